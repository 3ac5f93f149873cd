// idle_memory: the Go side of `compare.sh idle_memory`.
//
// On two Ps (GOMAXPROCS=2) the main goroutine reads its resident set
// (VmRSS in /proc/self/status), starts N goroutines that each increment a
// counter and then block receiving on one shared unbuffered channel, waits
// until the counter reaches N, sleeps 100 ms more so that the last ones
// are parked, and reads VmRSS again. Then it closes the channel and waits
// until every goroutine has seen the close (a second counter). Prints
//
//	bytes_per=<(after - before) / N> rss_before_kib=<x> rss_after_kib=<y> pte_per=<z>
//
// where pte_per is the growth of the page tables (VmPTE, not part of RSS)
// per goroutine, for the record.
//
// Usage: idle_memory N (GOMAXPROCS from the environment if set, else 2)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// statusKiB is a field of /proc/self/status given in kB (VmRSS, VmPTE).
func statusKiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintf(os.Stderr, "idle_memory: %v\n", err)
		os.Exit(1)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	fmt.Fprintf(os.Stderr, "idle_memory: no %s line\n", field)
	os.Exit(1)
	return 0
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: idle_memory N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		fmt.Fprintln(os.Stderr, "idle_memory: N must be a positive number")
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}
	ch := make(chan int)
	var ready, done int64
	before, pteBefore := statusKiB("VmRSS"), statusKiB("VmPTE")
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&ready, 1)
			if _, ok := <-ch; ok {
				fmt.Fprintln(os.Stderr, "idle_memory: received a value")
				os.Exit(1)
			}
			atomic.AddInt64(&done, 1)
		}()
	}
	for atomic.LoadInt64(&ready) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	after, pteAfter := statusKiB("VmRSS"), statusKiB("VmPTE")
	close(ch)
	for atomic.LoadInt64(&done) < int64(n) {
		time.Sleep(time.Millisecond)
	}
	per := func(a, b int64) float64 { return float64(b-a) * 1024 / float64(n) }
	fmt.Printf("bytes_per=%.2f rss_before_kib=%d rss_after_kib=%d pte_per=%.2f\n",
		per(before, after), before, after, per(pteBefore, pteAfter))
}
