// kv: the Go side of `compare.sh kv`, and the Go program gort's
// examples/kv_server.rs ports.
//
// A Redis-protocol (RESP2) key-value server in the usual shape of Go
// Redis servers (tidwall/redcon's example, the "build your own Redis"
// servers), standard library only:
//   - a goroutine per connection, with a 16 KiB bufio.Reader and
//     bufio.Writer; requests are read and answered in order into the
//     writer, which is flushed when the reader has no more buffered input,
//     so a pipeline's replies go out together and a lone request's at once;
//   - the key space split into 64 shards (picked by hash/maphash), each a
//     map[string]entry behind its own sync.Mutex; no lock is held across
//     I/O, never more than one at a time; a stored value is never modified
//     (SET and INCR store new slices), so GET writes it out after
//     unlocking;
//   - expiry checked lazily on every access, plus a sweeper goroutine that
//     walks 4 shards every 100 ms (a time.Ticker in a select with a done
//     channel);
//   - accept errors back off as net/http's Server does (5 ms doubling to
//     1 s).
//
// Commands (replies and error messages as Redis 7's, as in gort's port):
// PING [msg], ECHO msg, SET key value [NX|XX] [EX s|PX ms|KEEPTTL], GET,
// DEL key..., EXISTS key..., MGET key..., MSET k v ..., INCR, DECR,
// INCRBY, DECRBY, TTL, PTTL, DBSIZE, FLUSHDB/FLUSHALL, SELECT 0, QUIT; and
// what the tools send when they connect: CONFIG GET save|appendonly|*
// (redis-benchmark) and COMMAND ... (redis-cli: an empty array). Requests
// are RESP arrays of bulk strings or inline commands (split as Redis's
// sdssplitargs does).
//
// GOMAXPROCS from the environment if set, else 2.
//
// Usage: kv [ADDR] (default 127.0.0.1:6380); runs until killed.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	shardCount  = 64                // shards of the key space
	maxBulk     = 512 * 1024 * 1024 // largest bulk string (proto-max-bulk-len)
	maxArgs     = 1024 * 1024       // most arguments in one request
	maxInline   = 64 * 1024         // longest inline request or count line
	ioBuf       = 16 * 1024         // reader and writer size
	sweepEvery  = 100 * time.Millisecond
	sweepShards = 4
	linger      = 500 * time.Millisecond
	never       = math.MaxUint64 // entry.exp of a key without a time to live
	notInteger  = "ERR value is not an integer or out of range"
)

// ---------------------------------------------------------------------
// The store

type entry struct {
	val []byte
	exp uint64 // expiry on the store's clock (ms), never for none
}

type shard struct {
	mu       sync.Mutex
	m        map[string]entry
	expiring int // entries with a time to live: the sweeper skips shards without
}

type store struct {
	shards [shardCount]shard
	seed   maphash.Seed
	epoch  time.Time
}

func newStore() *store {
	s := &store{seed: maphash.MakeSeed(), epoch: time.Now()}
	for i := range s.shards {
		s.shards[i].m = make(map[string]entry)
	}
	return s
}

// nowMs is the store's clock: monotonic milliseconds since its creation.
func (s *store) nowMs() uint64 { return uint64(time.Since(s.epoch).Milliseconds()) }

func (s *store) shardOf(key []byte) *shard {
	return &s.shards[maphash.Bytes(s.seed, key)%shardCount]
}

func (s *store) expired(e entry) bool { return e.exp != never && e.exp <= s.nowMs() }

func (sh *shard) remove(key []byte) {
	if e, ok := sh.m[string(key)]; ok {
		delete(sh.m, string(key))
		if e.exp != never {
			sh.expiring--
		}
	}
}

// get is the value of key, unless it is absent or expired (then removed).
func (s *store) get(key []byte) ([]byte, bool) {
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[string(key)]
	if !ok {
		return nil, false
	}
	if s.expired(e) {
		sh.remove(key)
		return nil, false
	}
	return e.val, true
}

type cond int

const (
	always cond = iota
	ifAbsent
	ifPresent
)

type expiryKind int

const (
	clearTTL expiryKind = iota
	atTime
	keepTTL
)

// set stores value under key if c holds, with the time to live given by
// kind (and at); returns whether it did.
func (s *store) set(key, value []byte, c cond, kind expiryKind, at uint64) bool {
	sh := s.shardOf(key)
	val := append([]byte(nil), value...)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[string(key)]; ok {
		live := !s.expired(e)
		if (live && c == ifAbsent) || (!live && c == ifPresent) {
			if !live {
				sh.remove(key)
			}
			return false
		}
		exp := uint64(never)
		switch {
		case kind == atTime:
			exp = at
		case kind == keepTTL && live:
			exp = e.exp
		}
		if e.exp != never {
			sh.expiring--
		}
		if exp != never {
			sh.expiring++
		}
		sh.m[string(key)] = entry{val: val, exp: exp}
		return true
	}
	if c == ifPresent {
		return false
	}
	exp := uint64(never)
	if kind == atTime {
		exp = at
		sh.expiring++
	}
	sh.m[string(key)] = entry{val: val, exp: exp}
	return true
}

// del removes key; returns whether it existed (and had not expired).
func (s *store) del(key []byte) bool {
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[string(key)]
	if !ok {
		return false
	}
	sh.remove(key)
	return !s.expired(e)
}

func (s *store) exists(key []byte) bool {
	_, ok := s.get(key)
	return ok
}

var (
	errNotInteger = errors.New(notInteger)
	errOverflow   = errors.New("ERR increment or decrement would overflow")
)

// incrBy adds delta to the integer in key (0 if absent), keeping its time
// to live; returns the new value.
func (s *store) incrBy(key []byte, delta int64) (int64, error) {
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[string(key)]
	if !ok {
		sh.m[string(key)] = entry{val: strconv.AppendInt(nil, delta, 10), exp: never}
		return delta, nil
	}
	var old int64
	if s.expired(e) {
		sh.expiring--
		e.exp = never
	} else {
		var ok bool
		if old, ok = parseInt(e.val); !ok {
			return 0, errNotInteger
		}
	}
	n := old + delta
	if (delta > 0 && n < old) || (delta < 0 && n > old) {
		return 0, errOverflow
	}
	sh.m[string(key)] = entry{val: strconv.AppendInt(nil, n, 10), exp: e.exp}
	return n, nil
}

// ttlMs is the time to live of key: exists false if it does not exist,
// has false if it has none.
func (s *store) ttlMs(key []byte) (ms uint64, has, exists bool) {
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e, ok := sh.m[string(key)]
	if !ok {
		return 0, false, false
	}
	if e.exp == never {
		return 0, false, true
	}
	now := s.nowMs()
	if e.exp <= now {
		sh.remove(key)
		return 0, false, false
	}
	return e.exp - now, true, true
}

// size counts the keys, expired ones not removed yet included (DBSIZE).
func (s *store) size() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func (s *store) clear() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.m = make(map[string]entry)
		sh.expiring = 0
		sh.mu.Unlock()
	}
}

// sweep removes the expired keys of count shards from first on.
func (s *store) sweep(first, count int) {
	now := s.nowMs()
	for i := first; i < first+count; i++ {
		sh := &s.shards[i%shardCount]
		sh.mu.Lock()
		if sh.expiring > 0 {
			sh.expiring = 0
			for k, e := range sh.m {
				if e.exp == never {
					continue
				}
				if e.exp <= now {
					delete(sh.m, k)
				} else {
					sh.expiring++
				}
			}
		}
		sh.mu.Unlock()
	}
}

func sweeper(s *store, done <-chan struct{}) {
	ticker := time.NewTicker(sweepEvery)
	defer ticker.Stop()
	next := 0
	for {
		select {
		case <-done:
			return
		case <-ticker.C:
			s.sweep(next, sweepShards)
			next = (next + sweepShards) % shardCount
		}
	}
}

// ---------------------------------------------------------------------
// The protocol

// A protocolError is a malformed request: Redis's words after
// "ERR Protocol error: ".
type protocolError string

func (e protocolError) Error() string { return string(e) }

type conn struct {
	nc    net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	s     *store
	args  [][]byte // the current request's arguments
	arena []byte   // their bytes
	long  []byte   // a line longer than the reader's buffer
	num   []byte   // scratch for integers
}

// readLine returns the next line without its "\n" (and "\r"), valid until
// the next read; a line longer than maxInline is the error tooBig.
func (c *conn) readLine(tooBig protocolError) ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.long = append(c.long[:0], line...)
		for err == bufio.ErrBufferFull {
			if len(c.long) > maxInline {
				return nil, tooBig
			}
			line, err = c.r.ReadSlice('\n')
			c.long = append(c.long, line...)
		}
		line = c.long
	}
	if err != nil {
		return nil, err
	}
	if len(line) > maxInline+2 {
		return nil, tooBig
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// readRequest reads one request into c.args (none: nothing to run).
func (c *conn) readRequest() error {
	c.args = c.args[:0]
	c.arena = c.arena[:0]
	first, err := c.r.Peek(1)
	if err != nil {
		return err
	}
	if first[0] != '*' {
		line, err := c.readLine("too big inline request")
		if err != nil {
			return err
		}
		return c.splitArgs(line)
	}
	line, err := c.readLine("too big mbulk count string")
	if err != nil {
		return err
	}
	n, ok := parseInt(line[1:])
	if !ok || n > maxArgs {
		return protocolError("invalid multibulk length")
	}
	// The bytes into the arena first, then the slices (the arena may move
	// while it grows).
	var lens [8]int
	ls := lens[:0]
	for i := int64(0); i < n; i++ {
		b, err := c.r.Peek(1)
		if err != nil {
			return err
		}
		if b[0] != '$' {
			return protocolError(fmt.Sprintf("expected '$', got '%c'", printable(b[0])))
		}
		line, err := c.readLine("too big bulk count string")
		if err != nil {
			return err
		}
		size, ok := parseInt(line[1:])
		if !ok || size < 0 || size > maxBulk {
			return protocolError("invalid bulk length")
		}
		start := len(c.arena)
		need := start + int(size) + 2
		if cap(c.arena) < need {
			grown := make([]byte, start, 2*cap(c.arena)+int(size)+2)
			copy(grown, c.arena)
			c.arena = grown
		}
		c.arena = c.arena[:need]
		// The bulk and its "\r\n" (not checked, as Redis does not).
		if _, err := io.ReadFull(c.r, c.arena[start:]); err != nil {
			return err
		}
		c.arena = c.arena[:start+int(size)]
		ls = append(ls, int(size))
	}
	off := 0
	for _, size := range ls {
		c.args = append(c.args, c.arena[off:off+size])
		off += size
	}
	return nil
}

func printable(b byte) byte {
	if b >= ' ' && b <= '~' {
		return b
	}
	return '?'
}

func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == 0x0b || b == 0x0c
}

func unhex(b byte) (byte, bool) {
	switch {
	case '0' <= b && b <= '9':
		return b - '0', true
	case 'a' <= b && b <= 'f':
		return b - 'a' + 10, true
	case 'A' <= b && b <= 'F':
		return b - 'A' + 10, true
	}
	return 0, false
}

// splitArgs splits an inline request as Redis's sdssplitargs: separated
// by spaces; "..." with \n \r \t \b \a \\ \" \xHH escapes; '...' with \';
// a closing quote must be followed by a space or the end.
func (c *conn) splitArgs(line []byte) error {
	for i, b := range line {
		if b == 0 { // a C string ends at a NUL; so does an inline request in Redis
			line = line[:i]
			break
		}
	}
	var lens [8]int
	ls := lens[:0]
	i := 0
	for {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		start := len(c.arena)
		inDq, inSq := false, false
	arg:
		for ; ; i++ {
			end := i >= len(line)
			switch {
			case inDq:
				if end {
					return protocolError("unbalanced quotes in request")
				}
				switch b := line[i]; {
				case b == '\\' && i+3 < len(line) && line[i+1] == 'x':
					h, ok1 := unhex(line[i+2])
					l, ok2 := unhex(line[i+3])
					if ok1 && ok2 {
						c.arena = append(c.arena, h*16+l)
						i += 3
						continue
					}
					i++
					c.arena = append(c.arena, 'x')
				case b == '\\' && i+1 < len(line):
					i++
					e := line[i]
					switch e {
					case 'n':
						e = '\n'
					case 'r':
						e = '\r'
					case 't':
						e = '\t'
					case 'b':
						e = 0x08
					case 'a':
						e = 0x07
					}
					c.arena = append(c.arena, e)
				case b == '"':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return protocolError("unbalanced quotes in request")
					}
					i++
					break arg
				default:
					c.arena = append(c.arena, b)
				}
			case inSq:
				if end {
					return protocolError("unbalanced quotes in request")
				}
				switch b := line[i]; {
				case b == '\\' && i+1 < len(line) && line[i+1] == '\'':
					c.arena = append(c.arena, '\'')
					i++
				case b == '\'':
					if i+1 < len(line) && !isSpace(line[i+1]) {
						return protocolError("unbalanced quotes in request")
					}
					i++
					break arg
				default:
					c.arena = append(c.arena, b)
				}
			default:
				if end {
					break arg
				}
				switch b := line[i]; b {
				case ' ', '\n', '\r', '\t':
					break arg
				case '"':
					inDq = true
				case '\'':
					inSq = true
				default:
					c.arena = append(c.arena, b)
				}
			}
		}
		ls = append(ls, len(c.arena)-start)
	}
	off := 0
	for _, size := range ls {
		c.args = append(c.args, c.arena[off:off+size])
		off += size
	}
	return nil
}

// parseInt parses a decimal int64 as Redis's string2ll: an optional '-',
// no '+', no spaces, no leading zeros.
func parseInt(s []byte) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	digits := s
	if neg {
		digits = s[1:]
	}
	if len(digits) == 1 && digits[0] == '0' && !neg {
		return 0, true
	}
	if len(digits) == 0 || len(digits) > 19 || digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, false
		}
		v = v*10 + uint64(d-'0') // 19 digits fit in a uint64
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// ---------------------------------------------------------------------
// Replies

func (c *conn) ok()  { c.w.WriteString("+OK\r\n") }
func (c *conn) nil() { c.w.WriteString("$-1\r\n") }

func (c *conn) int(n int64) {
	c.w.WriteByte(':')
	c.num = strconv.AppendInt(c.num[:0], n, 10)
	c.w.Write(c.num)
	c.w.WriteString("\r\n")
}

func (c *conn) bulk(b []byte) {
	c.w.WriteByte('$')
	c.num = strconv.AppendInt(c.num[:0], int64(len(b)), 10)
	c.w.Write(c.num)
	c.w.WriteString("\r\n")
	c.w.Write(b)
	c.w.WriteString("\r\n")
}

func (c *conn) array(n int) {
	c.w.WriteByte('*')
	c.num = strconv.AppendInt(c.num[:0], int64(n), 10)
	c.w.Write(c.num)
	c.w.WriteString("\r\n")
}

func (c *conn) error(msg string) {
	c.w.WriteByte('-')
	c.w.WriteString(strings.NewReplacer("\r", " ", "\n", " ").Replace(msg))
	c.w.WriteString("\r\n")
}

func (c *conn) wrongArity(name string) {
	c.error("ERR wrong number of arguments for '" + name + "' command")
}

func trunc(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// ---------------------------------------------------------------------
// Commands

// A command's name (lower case, for error messages) and Redis's arity:
// n arguments exactly (the name included), or at least -n.
type command struct {
	name  string
	arity int
}

var commands = map[string]command{}

func init() {
	for name, arity := range map[string]int{
		"ping": -1, "echo": 2, "get": 2, "set": -3, "del": -2, "exists": -2,
		"mget": -2, "mset": -3, "incr": 2, "decr": 2, "incrby": 3, "decrby": 3,
		"ttl": 2, "pttl": 2, "dbsize": 1, "flushdb": -1, "flushall": -1,
		"select": 2, "config": -2, "command": -1, "quit": -1,
	} {
		commands[name] = command{name, arity}
	}
}

// lower is name in lower case, if it is a known command's length.
func lower(name []byte, buf *[8]byte) []byte {
	if len(name) > len(buf) {
		return nil
	}
	l := buf[:len(name)]
	for i, b := range name {
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		l[i] = b
	}
	return l
}

func eqFold(a []byte, b string) bool { return strings.EqualFold(string(a), b) }

// execute runs c.args, writing the reply; false means close the
// connection after the reply.
func (c *conn) execute() bool {
	args := c.args
	n := len(args)
	var buf [8]byte
	name := lower(args[0], &buf)
	spec, known := commands[string(name)] // no allocation for the lookup
	if !known {
		msg := "ERR unknown command '" + trunc(args[0], 128) + "', with args beginning with: "
		listed := ""
		for _, a := range args[1:] {
			if len(listed) >= 128 {
				break
			}
			listed += "'" + trunc(a, 128-len(listed)) + "' "
		}
		c.error(msg + listed)
		return true
	}
	cmd, want := spec.name, spec.arity
	ok := n == want || (want < 0 && n >= -want)
	switch cmd {
	case "ping":
		ok = ok && n <= 2
	case "mset":
		ok = ok && n%2 == 1
	case "flushdb", "flushall":
		ok = ok && n <= 2
	}
	if !ok {
		c.wrongArity(cmd)
		return true
	}
	s := c.s
	switch cmd {
	case "get":
		if v, ok := s.get(args[1]); ok {
			c.bulk(v)
		} else {
			c.nil()
		}
	case "set":
		c.set()
	case "ping":
		if n == 1 {
			c.w.WriteString("+PONG\r\n")
		} else {
			c.bulk(args[1])
		}
	case "echo":
		c.bulk(args[1])
	case "del", "exists":
		var count int64
		for _, k := range args[1:] {
			if (cmd == "del" && s.del(k)) || (cmd == "exists" && s.exists(k)) {
				count++
			}
		}
		c.int(count)
	case "mget":
		c.array(n - 1)
		for _, k := range args[1:] {
			if v, ok := s.get(k); ok {
				c.bulk(v)
			} else {
				c.nil()
			}
		}
	case "mset":
		for i := 1; i < n; i += 2 {
			s.set(args[i], args[i+1], always, clearTTL, 0)
		}
		c.ok()
	case "incr", "decr", "incrby", "decrby":
		var delta int64 = 1
		switch cmd {
		case "decr":
			delta = -1
		case "incrby", "decrby":
			d, ok := parseInt(args[2])
			switch {
			case !ok:
				c.error(notInteger)
				return true
			case cmd == "decrby" && d == math.MinInt64:
				c.error("ERR decrement would overflow")
				return true
			case cmd == "decrby":
				d = -d
			}
			delta = d
		}
		v, err := s.incrBy(args[1], delta)
		if err != nil {
			c.error(err.Error())
		} else {
			c.int(v)
		}
	case "ttl", "pttl":
		ms, has, exists := s.ttlMs(args[1])
		switch {
		case !exists:
			c.int(-2)
		case !has:
			c.int(-1)
		case cmd == "ttl":
			c.int(int64((ms + 500) / 1000))
		default:
			c.int(int64(ms))
		}
	case "dbsize":
		c.int(int64(s.size()))
	case "flushdb", "flushall":
		if n == 2 && !eqFold(args[1], "SYNC") && !eqFold(args[1], "ASYNC") {
			c.error("ERR syntax error")
			break
		}
		s.clear()
		c.ok()
	case "select":
		switch v, ok := parseInt(args[1]); {
		case !ok:
			c.error(notInteger)
		case v == 0:
			c.ok()
		default:
			c.error("ERR DB index is out of range")
		}
	case "config":
		c.config()
	case "command":
		c.array(0)
	case "quit":
		c.ok()
		return false
	}
	return true
}

func (c *conn) set() {
	args := c.args
	cd, keep := always, false
	var expire []byte
	var unit uint64
	for i := 3; i < len(args); i++ {
		opt := args[i]
		switch {
		case eqFold(opt, "NX") && cd != ifPresent:
			cd = ifAbsent
		case eqFold(opt, "XX") && cd != ifAbsent:
			cd = ifPresent
		case eqFold(opt, "KEEPTTL") && expire == nil:
			keep = true
		case (eqFold(opt, "EX") || eqFold(opt, "PX")) && i+1 < len(args) && !keep && expire == nil:
			unit = 1
			if eqFold(opt, "EX") {
				unit = 1000
			}
			expire = args[i+1]
			i++
		default:
			c.error("ERR syntax error")
			return
		}
	}
	kind, at := clearTTL, uint64(0)
	switch {
	case expire != nil:
		v, ok := parseInt(expire)
		if !ok {
			c.error(notInteger)
			return
		}
		now := c.s.nowMs()
		if v <= 0 || uint64(v) > math.MaxInt64/unit || uint64(v)*unit > math.MaxInt64-now {
			c.error("ERR invalid expire time in 'set' command")
			return
		}
		kind, at = atTime, uint64(v)*unit+now
	case keep:
		kind = keepTTL
	}
	if c.s.set(args[1], args[2], cd, kind, at) {
		c.ok()
	} else {
		c.nil()
	}
}

func (c *conn) config() {
	args := c.args
	if !eqFold(args[1], "GET") {
		c.error("ERR unknown subcommand '" + trunc(args[1], 128) + "'. Try CONFIG HELP.")
		return
	}
	if len(args) < 3 {
		c.wrongArity("config|get")
		return
	}
	params := [][2]string{{"save", ""}, {"appendonly", "no"}}
	var found [][2]string
	for _, p := range params {
		for _, a := range args[2:] {
			if string(a) == "*" || eqFold(a, p[0]) {
				found = append(found, p)
				break
			}
		}
	}
	c.array(2 * len(found))
	for _, p := range found {
		c.bulk([]byte(p[0]))
		c.bulk([]byte(p[1]))
	}
}

// ---------------------------------------------------------------------
// Serving

func serve(nc net.Conn, s *store) {
	defer nc.Close()
	c := &conn{
		nc:    nc,
		r:     bufio.NewReaderSize(nc, ioBuf),
		w:     bufio.NewWriterSize(nc, ioBuf),
		s:     s,
		arena: make([]byte, 0, 256),
	}
	for {
		err := c.readRequest()
		var perr protocolError
		if errors.As(err, &perr) {
			// After the replies to the requests before it, as Redis.
			c.error("ERR Protocol error: " + string(perr))
			c.w.Flush()
			c.lingerClose()
			return
		}
		if err != nil {
			return // the client closed, or the connection broke
		}
		more := len(c.args) == 0 || c.execute()
		// Flush when the request was the last one read: a pipeline's
		// replies go out together, a lone request's at once.
		if !more || c.r.Buffered() == 0 {
			if c.w.Flush() != nil {
				return
			}
		}
		if !more {
			c.lingerClose()
			return
		}
	}
}

// lingerClose closes the connection after its last reply without losing
// it: shut the sending side and read what the client still sends, until it
// closes or for linger (net/http's closeWriteAndWait).
func (c *conn) lingerClose() {
	tc, ok := c.nc.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		return
	}
	tc.SetReadDeadline(time.Now().Add(linger))
	io.CopyN(io.Discard, tc, 256*1024)
}

func main() {
	addr := "127.0.0.1:6380"
	switch len(os.Args) {
	case 1:
	case 2:
		addr = os.Args[1]
	default:
		fmt.Fprintln(os.Stderr, "usage: kv [ADDR]")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "kv: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "kv: listening on %s with GOMAXPROCS=%d\n", l.Addr(), runtime.GOMAXPROCS(0))
	s := newStore()
	done := make(chan struct{})
	defer close(done)
	go sweeper(s, done)
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			// Out of descriptors or another temporary error: back off as
			// net/http's Server does.
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff *= 2; backoff > time.Second {
				backoff = time.Second
			}
			fmt.Fprintf(os.Stderr, "kv: accept: %v; retrying in %v\n", err, backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go serve(nc, s)
	}
}
