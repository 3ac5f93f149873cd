#!/usr/bin/env bash
# Side-by-side benchmarks of gort against peer crates and the OS.
#
# Usage: bash benches/compare.sh METRIC
#
# Builds the benches/compare crate (gort-compare) in release mode and runs
# the binary for METRIC, which prints one parseable line per comparison:
#   compare <metric> <side>=<value> <side>=<value> ratio=<first/second>
# plus human-readable detail (spread of the samples) on stderr.
#
# A new metric is usually one more binary in benches/compare/src/bin/, one
# more entry in METRICS and ORDER below, and (only if it is not just "run the
# binary of the same name") a run_<metric> function.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# metric name -> what it measures (by default it runs the binary of that name).
declare -A METRICS=(
    [switch]="resume+suspend round trip: gort vs corosensei, and an OS-thread futex ping-pong"
    [switch_ir]="instructions per round trip under callgrind: gort vs corosensei (needs valgrind)"
    [stack]="coroutine creation on a fresh vs a pooled stack; RSS per idle coroutine"
    [yield]="ns per yield, two coroutines on 1 P: gort vs Go (Gosched), may, tokio"
    [spawn]="spawn + finish 1M trivial coroutines on 2 Ps, ns each and peak RSS: gort vs Go, may, tokio"
    [locked]="park/ready round trip with a coroutine wired by lock_os_thread vs unwired (2 Ps)"
    [timers]="10,000 coroutines sleeping 1 ms 100 times on 2 Ps, wall and CPU ms: gort vs Go, tokio, may"
    [echo]="TCP echo servers under loadgen, 64-byte messages at 50 and 1000 connections: gort vs Go, tokio, may"
    [pingpong]="ns per round trip over unbuffered channels, two coroutines on 1 and 2 Ps: gort vs Go, may, tokio, std threads"
    [mutex]="contended Mutex, 1,000 coroutines x 2,000 locks on 2 Ps, ns per lock: gort vs Go, may, tokio"
    [pipeline]="1 -> 8 -> 1 pipeline over bounded channels, 1M items on 2 Ps, ns per item: gort vs Go, may, tokio"
    [idle_memory]="RSS per coroutine parked on a channel receive, 100,000 (and 30,000) on 2 Ps: gort vs Go, may, tokio"
    [kv]="RESP key-value servers under redis-benchmark (ping, set, get) at 50 and 1000 connections, with and without -P 16: gort vs Go, redis-server"
    [http]="HTTP/1.1 keep-alive hello servers under wrk -t1 at 50 and 500 connections: gort vs Go net/http, hyper"
)
# The order `all` runs them in.
ORDER=(switch switch_ir stack yield spawn locked timers echo pingpong mutex pipeline idle_memory kv http)

# A metric runs run_<metric> if defined, else the release binary of its name.
run_switch_ir() {
    bash "$root/benches/callgrind_switch.sh"
}

# COMPARE_ROUNDS=R (for a quick run) passes `--rounds R` to the binaries
# that alternate their sides themselves (yield, spawn, pingpong, mutex,
# pipeline).
ROUNDS_ARGS=()
if [[ -n ${COMPARE_ROUNDS:-} ]]; then
    [[ $COMPARE_ROUNDS =~ ^[1-9][0-9]*$ ]] ||
        { echo "compare.sh: COMPARE_ROUNDS must be a positive number, not '$COMPARE_ROUNDS'" >&2; exit 2; }
    ROUNDS_ARGS=(--rounds "$COMPARE_ROUNDS")
fi

# The Go peers live in benches/go/ (stdlib only, no module downloads) and are
# built into target/go/. Sets GO_ARGS to `--go PATH` for the metric's
# binary and GO_BIN to PATH; without a Go toolchain, both to nothing (the Go
# lines are skipped), after saying how to install one. A Go build error
# stops the script.
go_peer() {
    local prog=$1
    GO_ARGS=()
    GO_BIN=""
    if ! command -v go >/dev/null 2>&1; then
        echo "compare.sh: no 'go' command: skipping the Go side of '$prog';" \
            "run 'bash benches/install-bench-deps.sh' to install Go (golang-go)" >&2
        return 0
    fi
    mkdir -p "$root/target/go"
    (
        cd "$root/benches/go"
        GOCACHE="${GOCACHE:-$root/target/go/cache}" GOPROXY=off GOFLAGS= GOTOOLCHAIN=local \
            go build -o "$root/target/go/$prog" "./$prog"
    )
    echo "# Go side: $(go version)" >&2
    GO_ARGS=(--go "$root/target/go/$prog")
    GO_BIN="$root/target/go/$prog"
}

run_yield() {
    go_peer yield
    "$root/target/release/yield" "${GO_ARGS[@]}" "${ROUNDS_ARGS[@]}"
}

run_spawn() {
    go_peer spawn
    "$root/target/release/spawn" "${GO_ARGS[@]}" "${ROUNDS_ARGS[@]}"
}

run_pingpong() {
    go_peer pingpong
    "$root/target/release/pingpong" "${GO_ARGS[@]}" "${ROUNDS_ARGS[@]}"
}

run_mutex() {
    go_peer mutex
    "$root/target/release/mutex" "${GO_ARGS[@]}" "${ROUNDS_ARGS[@]}"
}

run_pipeline() {
    go_peer pipeline
    "$root/target/release/pipeline" "${GO_ARGS[@]}" "${ROUNDS_ARGS[@]}"
}

# --- Metrics that compare.sh alternates itself (timers, idle_memory, echo,
# kv, http): each sample is one child process (a program printing
# `key=value` fields, or a server driven by a load generator: loadgen, wrk,
# redis-benchmark), the sides alternate within every round, and the
# medians are compared here, in the format of the Rust binaries' lines.

# Scratch files, and the servers still running: removed and killed on any
# exit (an error, ^C, a kill), so that no server is ever left behind.
scratch=""
live_pids=()
cleanup() {
    local pid
    for pid in "${live_pids[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    live_pids=()
    if [[ -n $scratch ]]; then rm -rf "$scratch"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
use_scratch() {
    [[ -n $scratch ]] || scratch=$(mktemp -d "${TMPDIR:-/tmp}/gort-compare.XXXXXX")
}

die() {
    echo "compare.sh: $*" >&2
    exit 1
}

# Samples and failures, by "<metric key>/<side>": SAMPLES holds the values
# (space-separated), FAILED the token of a side that failed
# (`failed(<token>)` in the compare line).
declare -A SAMPLES=() FAILED=()
record() { SAMPLES[$1/$2]+="${SAMPLES[$1/$2]:+ }$3"; }
failed() { [[ -n ${FAILED[$1/$2]:-} ]]; }

# stats X...: "median min max count" of the numbers (the median of an even
# count is the mean of the middle two, as in lib.rs).
stats() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
        END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
              printf "%.2f %.2f %.2f %d\n", m, v[1], v[NR], NR }'
}

# figure KEY SIDE: the side's median, or failed(<token>).
figure() {
    if failed "$1" "$2"; then
        echo "failed(${FAILED[$1/$2]})"
    elif [[ -z ${SAMPLES[$1/$2]:-} ]]; then
        echo "failed(no-result)"
    else
        # shellcheck disable=SC2086 # the samples are space-separated numbers
        stats ${SAMPLES[$1/$2]} | cut -d' ' -f1
    fi
}

# report KEY BASE PEER...: the spread of every side on stderr, then one
# `compare KEY BASE=<median> PEER=<median> ratio=<BASE/PEER>` line per peer
# on stdout (ratio=na if either side failed).
report() {
    local key=$1 base=$2 side a b r m lo hi n
    shift 2
    for side in "$base" "$@"; do
        if failed "$key" "$side" || [[ -z ${SAMPLES[$key/$side]:-} ]]; then
            echo "# $key $side: $(figure "$key" "$side")" >&2
        else
            # shellcheck disable=SC2086
            read -r m lo hi n < <(stats ${SAMPLES[$key/$side]})
            echo "# $key $side: $m (min $lo, max $hi, $n samples)" >&2
        fi
    done
    a=$(figure "$key" "$base")
    for side; do
        b=$(figure "$key" "$side")
        r=na
        if [[ $a != failed* && $b != failed* ]]; then
            r=$(awk -v x="$a" -v y="$b" 'BEGIN { if (y == 0) print "na"; else printf "%.3f", x / y }')
        fi
        echo "compare $key $base=$a $side=$b ratio=$r"
    done
}

# run_child LIMIT CMD...: runs CMD (stdin closed, killed after LIMIT
# seconds) and puts its stdout in CHILD_OUT. If it fails, sets CHILD_FAIL
# to `timeout`, `exit=<code>` or `signal=<name>` (plus `,ENOMEM` if its
# stderr says it ran out of memory), prints its stderr's last lines on
# stderr and returns 1.
run_child() {
    local limit=$1 rc=0
    shift
    use_scratch
    CHILD_OUT=$(timeout --foreground -k 5 "$limit" "$@" </dev/null 2>"$scratch/child.err") || rc=$?
    CHILD_FAIL=""
    ((rc != 0)) || return 0
    if ((rc == 124)); then
        CHILD_FAIL=timeout
    elif ((rc > 128 && rc < 160)); then
        CHILD_FAIL="signal=SIG$(kill -l $((rc - 128)))"
    else
        CHILD_FAIL="exit=$rc"
    fi
    if grep -q -e 'Cannot allocate memory' -e 'memory allocation of' "$scratch/child.err"; then
        CHILD_FAIL+=",ENOMEM"
    fi
    echo "compare.sh: '$*' failed ($CHILD_FAIL); stderr: $(tail -n 6 "$scratch/child.err" | paste -sd'|')" >&2
    return 1
}

# field KEY TEXT: the value of the last `KEY=<value>` field in TEXT.
field() {
    local kv v=""
    for kv in $2; do
        [[ $kv != "$1="* ]] || v=${kv#*=}
    done
    [[ -n $v ]] && echo "$v"
}

# timers: every side is one program (a Rust binary of gort-compare, the Go
# program benches/go/timers) that prints `wall_ms=<x> cpu_ms=<y>`.
timers_child() {
    local limit=120
    case $1 in
    gort) run_child $limit "$root/target/release/timers_gort" ;;
    go) run_child $limit env GOMAXPROCS=2 "$GO_BIN" ;;
    tokio_ct) run_child $limit "$root/target/release/timers_tokio" current_thread ;;
    tokio_mt) run_child $limit "$root/target/release/timers_tokio" multi_thread ;;
    may) run_child $limit "$root/target/release/timers_may" ;;
    esac
}

run_timers() {
    local rounds=${TIMERS_ROUNDS:-5} round side line wall cpu
    [[ $rounds =~ ^[1-9][0-9]*$ ]] || die "TIMERS_ROUNDS must be a positive number, not '$rounds'"
    go_peer timers
    local sides=(gort ${GO_BIN:+go} tokio_ct tokio_mt may)
    for ((round = 1; round <= rounds; round++)); do
        line="timers round $round/$rounds:"
        for side in "${sides[@]}"; do
            failed timers_wall_ms "$side" && continue
            if timers_child "$side" &&
                wall=$(field wall_ms "$CHILD_OUT") && cpu=$(field cpu_ms "$CHILD_OUT"); then
                record timers_wall_ms "$side" "$wall"
                record timers_cpu_ms "$side" "$cpu"
                line+=" $side=${wall}/${cpu}ms"
            else
                [[ -n $CHILD_FAIL ]] || CHILD_FAIL=no-result
                FAILED[timers_wall_ms/$side]=$CHILD_FAIL
                FAILED[timers_cpu_ms/$side]=$CHILD_FAIL
                line+=" $side=failed($CHILD_FAIL)"
            fi
        done
        echo "$line  (wall/cpu)" >&2
    done
    report timers_wall_ms "${sides[@]}"
    report timers_cpu_ms "${sides[@]}"
}

# idle_memory: every sample is one program (`idle_memory --side SIDE N`
# of gort-compare, or the Go program benches/go/idle_memory) that prints
# `bytes_per=<x> rss_before_kib=<y> rss_after_kib=<z> pte_per=<p>` (p:
# page-table growth per coroutine, not in RSS; shown on the round lines
# only). At 100,000 coroutines: gort, go, may, tokio; at 30,000 (where
# may's stacks, two mappings each, still fit under vm.max_map_count):
# gort, go, may. IDLE_ROUNDS rounds (default 5).
idle_memory_child() {
    local side=$1 n=$2 limit=60
    case $side in
    go) run_child $limit env GOMAXPROCS=2 "$GO_BIN" "$n" ;;
    *) run_child $limit env RUST_BACKTRACE=0 "$root/target/release/idle_memory" --side "$side" "$n" ;;
    esac
}

run_idle_memory() {
    local rounds=${IDLE_ROUNDS:-5} round side n key line bytes
    [[ $rounds =~ ^[1-9][0-9]*$ ]] || die "IDLE_ROUNDS must be a positive number, not '$rounds'"
    go_peer idle_memory
    local big=(gort ${GO_BIN:+go} may tokio) small=(gort ${GO_BIN:+go} may)
    echo "# idle_memory: gort and may with 16 KiB stacks (gort unguarded), Go's 2 KiB initial stacks; $rounds rounds" >&2
    for ((round = 1; round <= rounds; round++)); do
        for n in 100000 30000; do
            key=idle_memory_$((n / 1000))k
            line="idle_memory round $round/$rounds n=$n:"
            if ((n == 100000)); then set -- "${big[@]}"; else set -- "${small[@]}"; fi
            for side; do
                failed "$key" "$side" && continue
                if idle_memory_child "$side" "$n" && bytes=$(field bytes_per "$CHILD_OUT"); then
                    record "$key" "$side" "$bytes"
                    line+=" $side=${bytes}B(PTE+$(field pte_per "$CHILD_OUT" || echo '?')B)"
                else
                    [[ -n $CHILD_FAIL ]] || CHILD_FAIL=no-result
                    FAILED[$key/$side]=$CHILD_FAIL
                    line+=" $side=failed($CHILD_FAIL)"
                fi
            done
            echo "$line" >&2
        done
    done
    report idle_memory_100k "${big[@]}"
    report idle_memory_30k "${small[@]}"
}

# echo: every sample is a fresh server on its own free port, driven by
# ../shared/tools/loadgen for ECHO_SECS seconds, then killed.

# port_in_use PORT: whether any TCP socket (v4 or v6) uses PORT.
port_in_use() {
    local hex
    printf -v hex '%04X' "$1"
    grep -q ":$hex " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port: a TCP port nothing uses, below the ephemeral range (32768 and
# up here), so that the load generator's own client ports never take it.
free_port() {
    local p i
    for ((i = 0; i < 200; i++)); do
        p=$((20000 + RANDOM % 12000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free TCP port found in 20000-31999"
}

# The servers of the metric being run: SERVER_KIND (echo, http, kv) picks
# server_cmd_<kind> SIDE ADDR PORT, which sets SERVER_CMD to the command
# that serves on ADDR (127.0.0.1:PORT).
SERVER_KIND=""
server_cmd_echo() {
    case $1 in
    gort) SERVER_CMD=(env GORT_PROCS=2 "$root/target/release/examples/echo_server" "$2") ;;
    go) SERVER_CMD=(env GOMAXPROCS=2 "$GO_BIN" "$2") ;;
    tokio) SERVER_CMD=("$root/target/release/echo_tokio" "$2") ;;
    may) SERVER_CMD=("$root/target/release/echo_may" "$2") ;;
    esac
}

# start_server SIDE PORT: starts SIDE's server (of SERVER_KIND) on
# 127.0.0.1:PORT in the background (SERVER_PID; its output in
# $scratch/server.log) and waits until it accepts a connection (up to 10
# s). Returns 1 if it exits or never accepts.
start_server() {
    local side=$1 port=$2 addr="127.0.0.1:$2" i
    SERVER_CMD=()
    "server_cmd_$SERVER_KIND" "$side" "$addr" "$port"
    ((${#SERVER_CMD[@]} > 0)) || die "no $SERVER_KIND server for side '$side'"
    use_scratch
    "${SERVER_CMD[@]}" </dev/null >"$scratch/server.log" 2>&1 &
    SERVER_PID=$!
    live_pids+=("$SERVER_PID")
    for ((i = 0; i < 200; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            # Make sure it is our server that answered, not a squatter.
            sleep 0.1
            kill -0 "$SERVER_PID" 2>/dev/null && return 0
            return 1
        fi
        sleep 0.05
    done
    return 1
}

# stop_server PID: SIGTERM, then SIGKILL after 2 s; reaps it. Prints
# nothing; returns 0.
stop_server() {
    local pid=$1 i p kept=()
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${live_pids[@]}"; do
        [[ $p == "$pid" ]] || kept+=("$p")
    done
    live_pids=("${kept[@]}")
}

# launch_server SIDE: starts SIDE's server (start_server) on a free port,
# PORT, trying up to 3 ports. Returns 1 (the server stopped, its output on
# stderr) if it never starts.
launch_server() {
    local side=$1 tries
    for ((tries = 0; tries < 3; tries++)); do
        PORT=$(free_port)
        start_server "$side" "$PORT" && return 0
        stop_server "$SERVER_PID"
        echo "compare.sh: the $side $SERVER_KIND server did not start on port $PORT; its output: $(tail -n 6 "$scratch/server.log" | paste -sd'|')" >&2
    done
    return 1
}

# server_alive SIDE: whether the server started by launch_server still
# runs (if not, says so with its output on stderr).
server_alive() {
    kill -0 "$SERVER_PID" 2>/dev/null && return 0
    echo "compare.sh: the $1 $SERVER_KIND server died during the run; its output: $(tail -n 6 "$scratch/server.log" | paste -sd'|')" >&2
    return 1
}

# raise_nofile CONNS WHAT: each connection is a descriptor in the server
# and one in the client: raises the soft open-file limit to CONNS + 256 if
# it is lower (up to the hard limit), else stops with an error that names
# WHAT (the variable that sets the connection counts).
raise_nofile() {
    local need=$(($1 + 256)) soft hard
    soft=$(ulimit -Sn)
    hard=$(ulimit -Hn)
    if [[ $soft != unlimited ]] && ((soft < need)); then
        if [[ $hard == unlimited ]] || ((hard >= need)); then
            ulimit -Sn "$need"
            echo "# raised the open-file limit from $soft to $need" >&2
        else
            die "$1 connections need an open-file limit of at least $need; the hard limit is $hard (raise it, or set $2)"
        fi
    fi
}

# echo_sample SIDE CONNS: one loadgen run against a fresh server; records
# rps and p99 under echo_rps_c<CONNS> / echo_p99_c<CONNS>, or marks the
# side failed there (server did not start or died, loadgen failed or
# counted errors). Appends a word to ROUND_LINE.
echo_sample() {
    local side=$1 conns=$2 rps p99 errors why=""
    local kr=echo_rps_c$conns kp=echo_p99_c$conns
    if ! launch_server "$side"; then
        why=server-start
    else
        if ! run_child $((ECHO_SECS_ + 60)) "$ECHO_LOADGEN" --addr "127.0.0.1:$PORT" \
            --conns "$conns" --size 64 --secs "$ECHO_SECS_" --threads 1; then
            why="loadgen-$CHILD_FAIL"
        elif ! rps=$(field reqs_per_s "$CHILD_OUT") || ! p99=$(field p99_us "$CHILD_OUT") ||
            ! errors=$(field errors "$CHILD_OUT"); then
            why=no-result
            echo "compare.sh: loadgen printed no result against $side: $CHILD_OUT" >&2
        elif [[ $errors != 0 ]]; then
            why="errors=$errors"
            echo "compare.sh: loadgen counted $errors errors against the $side server at $conns connections: $CHILD_OUT" >&2
        fi
        server_alive "$side" || why=server-died
    fi
    stop_server "$SERVER_PID"
    if [[ -n $why ]]; then
        FAILED[$kr/$side]=$why
        FAILED[$kp/$side]=$why
        ROUND_LINE+=" $side=failed($why)"
    else
        record "$kr" "$side" "$rps"
        record "$kp" "$side" "$p99"
        ROUND_LINE+=" $side=${rps}rps/${p99}us"
    fi
}

run_echo() {
    local rounds=${ECHO_ROUNDS:-3} conns_list round conns side max=0
    SERVER_KIND=echo
    ECHO_SECS_=${ECHO_SECS:-10}
    read -r -a conns_list <<<"${ECHO_CONNS:-50 1000}"
    [[ $rounds =~ ^[1-9][0-9]*$ ]] || die "ECHO_ROUNDS must be a positive number, not '$rounds'"
    [[ $ECHO_SECS_ =~ ^[1-9][0-9]*$ && $ECHO_SECS_ -le 59 ]] ||
        die "ECHO_SECS must be a number of seconds from 1 to 59, not '$ECHO_SECS_'"
    for conns in "${conns_list[@]}"; do
        [[ $conns =~ ^[1-9][0-9]*$ ]] || die "ECHO_CONNS must be positive numbers, not '$conns'"
        ((conns <= max)) || max=$conns
    done
    command -v timeout >/dev/null || die "'timeout' (coreutils) is needed"

    # The neutral load generator, built every time like everything else.
    local lg_dir=${LOADGEN_DIR:-$root/../shared/tools/loadgen}
    [[ -f $lg_dir/Cargo.toml ]] ||
        die "no load generator at $lg_dir (expected ../shared/tools/loadgen next to the repository; set LOADGEN_DIR)"
    cargo build --release -q --manifest-path "$lg_dir/Cargo.toml" ||
        die "cannot build the load generator in $lg_dir"
    ECHO_LOADGEN="$lg_dir/target/release/loadgen"
    [[ -x $ECHO_LOADGEN ]] || die "no load generator binary at $ECHO_LOADGEN"

    # gort's server is the example examples/echo_server.
    local sides=(gort)
    if ! cargo build --release -q --example echo_server; then
        echo "compare.sh: cannot build gort's examples/echo_server: the gort side fails" >&2
        for conns in "${conns_list[@]}"; do
            FAILED[echo_rps_c$conns/gort]=build
            FAILED[echo_p99_c$conns/gort]=build
        done
    fi
    go_peer echo
    [[ -z $GO_BIN ]] || sides+=(go)
    sides+=(tokio may)

    raise_nofile "$max" ECHO_CONNS

    echo "# loadgen: 1 thread, 64-byte messages, ${ECHO_SECS_} s (+1 s warm-up) per sample; $rounds rounds of: ${sides[*]}" >&2
    for ((round = 1; round <= rounds; round++)); do
        for conns in "${conns_list[@]}"; do
            ROUND_LINE="echo round $round/$rounds c$conns:"
            for side in "${sides[@]}"; do
                failed "echo_rps_c$conns" "$side" && continue
                echo_sample "$side" "$conns"
            done
            echo "$ROUND_LINE" >&2
        done
    done
    for conns in "${conns_list[@]}"; do
        report "echo_rps_c$conns" "${sides[@]}"
        report "echo_p99_c$conns" "${sides[@]}"
    done
}

# http: every sample is a fresh server on its own free port, driven by wrk
# (one thread, HTTP/1.1 keep-alive) for HTTP_SECS seconds after an
# uncounted 1 s warm-up run, then killed. Compared: requests per second.
server_cmd_http() {
    case $1 in
    gort) SERVER_CMD=(env GORT_PROCS=2 "$root/target/release/examples/http_hello" "$2") ;;
    go) SERVER_CMD=(env GOMAXPROCS=2 "$GO_BIN" "$2") ;;
    hyper) SERVER_CMD=("$root/target/release/http_hyper" "$2") ;;
    esac
}

# wrk_errors OUTPUT: a failure token if wrk's output reports socket errors
# (`socket-errors=<connect>/<read>/<write>/<timeout>`) or responses other
# than 2xx/3xx (`non2xx=<n>`); nothing if it reports neither.
wrk_errors() {
    awk '/^ *Socket errors:/ { gsub(",", ""); printf "socket-errors=%s/%s/%s/%s", $4, $6, $8, $10; exit }
         /^ *Non-2xx or 3xx responses:/ { printf "non2xx=%s", $NF; exit }' <<<"$1"
}

# http_sample SIDE CONNS: one wrk run against a fresh server; records its
# requests per second under http_c<CONNS>, or marks the side failed there.
# Appends a word to ROUND_LINE.
http_sample() {
    local side=$1 conns=$2 key=http_c$2 url rps="" why=""
    if ! launch_server "$side"; then
        why=server-start
    else
        url="http://127.0.0.1:$PORT/"
        if ! run_child 60 wrk -t1 -c"$conns" -d1s "$url"; then
            why="wrk-$CHILD_FAIL"
        elif ! run_child $((HTTP_SECS_ + 60)) wrk -t1 -c"$conns" -d"${HTTP_SECS_}s" "$url"; then
            why="wrk-$CHILD_FAIL"
        else
            rps=$(awk '$1 == "Requests/sec:" { print $2 }' <<<"$CHILD_OUT")
            if [[ -z $rps ]]; then
                why=no-result
            else
                why=$(wrk_errors "$CHILD_OUT")
            fi
            [[ -z $why ]] || echo "compare.sh: wrk against the $side server at $conns connections: $why; its output: $(paste -sd'|' <<<"$CHILD_OUT")" >&2
        fi
        server_alive "$side" || why=server-died
    fi
    stop_server "$SERVER_PID"
    if [[ -n $why ]]; then
        FAILED[$key/$side]=$why
        ROUND_LINE+=" $side=failed($why)"
    else
        record "$key" "$side" "$rps"
        ROUND_LINE+=" $side=${rps}rps"
    fi
}

run_http() {
    local rounds=${HTTP_ROUNDS:-3} conns_list round conns side max=0
    SERVER_KIND=http
    HTTP_SECS_=${HTTP_SECS:-5}
    read -r -a conns_list <<<"${HTTP_CONNS:-50 500}"
    [[ $rounds =~ ^[1-9][0-9]*$ ]] || die "HTTP_ROUNDS must be a positive number, not '$rounds'"
    [[ $HTTP_SECS_ =~ ^[1-9][0-9]*$ && $HTTP_SECS_ -le 59 ]] ||
        die "HTTP_SECS must be a number of seconds from 1 to 59, not '$HTTP_SECS_'"
    for conns in "${conns_list[@]}"; do
        [[ $conns =~ ^[1-9][0-9]*$ ]] || die "HTTP_CONNS must be positive numbers, not '$conns'"
        ((conns <= max)) || max=$conns
    done
    command -v timeout >/dev/null || die "'timeout' (coreutils) is needed"
    command -v wrk >/dev/null ||
        die "no 'wrk' command: run 'bash benches/install-bench-deps.sh' to install it (Debian's wrk)"

    local sides=(gort)
    if ! cargo build --release -q --example http_hello; then
        echo "compare.sh: cannot build gort's examples/http_hello: the gort side fails" >&2
        for conns in "${conns_list[@]}"; do FAILED[http_c$conns/gort]=build; done
    fi
    go_peer http_hello
    [[ -z $GO_BIN ]] || sides+=(go)
    sides+=(hyper)
    raise_nofile "$max" HTTP_CONNS

    echo "# wrk -t1, ${HTTP_SECS_} s (+1 s warm-up) per sample, keep-alive, GET /; $rounds rounds of: ${sides[*]}" >&2
    for ((round = 1; round <= rounds; round++)); do
        for conns in "${conns_list[@]}"; do
            ROUND_LINE="http round $round/$rounds c$conns:"
            for side in "${sides[@]}"; do
                failed "http_c$conns" "$side" && continue
                http_sample "$side" "$conns"
            done
            echo "$ROUND_LINE" >&2
        done
    done
    for conns in "${conns_list[@]}"; do
        report "http_c$conns" "${sides[@]}"
    done
}

# kv: every sample is a fresh server on its own free port, driven by
# redis-benchmark (`-t ping,set,get -q`, one client thread) at one
# connection count and pipeline depth, then killed. Compared: requests per
# second of PING (the multibulk PING_MBULK; PING_INLINE, which runs first,
# is shown on stderr only), SET and GET, under kv_<test>_c<CONNS>[_p<P>].
server_cmd_kv() {
    case $1 in
    gort) SERVER_CMD=(env GORT_PROCS=2 "$root/target/release/examples/kv_server" "$2") ;;
    go) SERVER_CMD=(env GOMAXPROCS=2 "$GO_BIN" "$2") ;;
    redis)
        use_scratch
        SERVER_CMD=(redis-server --port "$3" --bind 127.0.0.1 --save '' --appendonly no
            --dir "$scratch" --maxclients $((KV_MAX_CONNS + 32)))
        ;;
    esac
}

# The tests of a kv sample: redis-benchmark's names, and ours.
KV_TESTS=(PING_INLINE:ping_inline PING_MBULK:ping SET:set GET:get)

# kv_sample SIDE CONNS PIPELINE: one redis-benchmark run against a fresh
# server; records each test's requests per second under
# kv_<test>_c<CONNS>[_p<PIPELINE>], or marks the side failed for all of
# them. Appends a word to ROUND_LINE.
kv_sample() {
    local side=$1 conns=$2 pipe=$3 suffix="_c$2" n=$KV_N_ why="" t name rps out word=""
    if ((pipe > 1)); then
        suffix+="_p$pipe"
        n=$KV_N_P_
    fi
    if ! launch_server "$side"; then
        why=server-start
    else
        if ! run_child "$KV_LIMIT" redis-benchmark -h 127.0.0.1 -p "$PORT" -t ping,set,get \
            -n "$n" -c "$conns" -P "$pipe" -q; then
            # redis-benchmark exits 1 at the first error reply ("Error
            # from server: ..." on stderr, shown by run_child).
            why="redis-benchmark-$CHILD_FAIL"
        else
            # -q prints progress lines ended by \r, then one line per test:
            # `SET: 123456.78 requests per second, p50=0.311 msec`.
            out=$(tr '\r' '\n' <<<"$CHILD_OUT" | grep -E '^ *[A-Z_]+: [0-9.]+ requests per second' || true)
            for t in "${KV_TESTS[@]}"; do
                rps=$(awk -v t="${t%%:*}:" '$1 == t { print $2 }' <<<"$out")
                if [[ -z $rps ]]; then
                    why=no-result
                    break
                fi
            done
            if [[ $why == no-result ]]; then
                echo "compare.sh: redis-benchmark printed no result against $side: $(tr '\r' '\n' <<<"$CHILD_OUT" | tail -n 4 | paste -sd'|')" >&2
            fi
        fi
        server_alive "$side" || why=server-died
    fi
    stop_server "$SERVER_PID"
    if [[ -n $why ]]; then
        for t in "${KV_TESTS[@]}"; do FAILED[kv_${t#*:}$suffix/$side]=$why; done
        ROUND_LINE+=" $side=failed($why)"
        return
    fi
    for t in "${KV_TESTS[@]}"; do
        name=${t#*:}
        rps=$(awk -v t="${t%%:*}:" '$1 == t { print $2 }' <<<"$out")
        record "kv_$name$suffix" "$side" "$rps"
        word+="${word:+/}$name=${rps%.*}"
    done
    ROUND_LINE+=" $side=$word"
}

run_kv() {
    local rounds=${KV_ROUNDS:-3} conns_list pipes round conns pipe side suffix t v
    SERVER_KIND=kv
    KV_N_=${KV_N:-100000}
    KV_N_P_=${KV_N_P16:-1000000}
    read -r -a conns_list <<<"${KV_CONNS:-50 1000}"
    read -r -a pipes <<<"${KV_PIPELINES:-1 16}"
    for v in "$rounds" "$KV_N_" "$KV_N_P_" "${conns_list[@]}" "${pipes[@]}"; do
        [[ $v =~ ^[1-9][0-9]*$ ]] ||
            die "KV_ROUNDS, KV_N, KV_N_P16, KV_CONNS and KV_PIPELINES must be positive numbers, not '$v'"
    done
    KV_MAX_CONNS=0
    for conns in "${conns_list[@]}"; do ((conns <= KV_MAX_CONNS)) || KV_MAX_CONNS=$conns; done
    # A sample runs 4 tests; even at 5,000 requests/s each it ends in time.
    KV_LIMIT=$((60 + 4 * (KV_N_ > KV_N_P_ / 16 ? KV_N_ : KV_N_P_ / 16) / 5000))
    command -v timeout >/dev/null || die "'timeout' (coreutils) is needed"
    command -v redis-benchmark >/dev/null ||
        die "no 'redis-benchmark' command: run 'bash benches/install-bench-deps.sh' to install it (Debian's redis-tools)"

    local sides=(gort)
    if ! cargo build --release -q --example kv_server; then
        echo "compare.sh: cannot build gort's examples/kv_server: the gort side fails" >&2
        for conns in "${conns_list[@]}"; do
            for pipe in "${pipes[@]}"; do
                suffix=_c$conns
                ((pipe == 1)) || suffix+=_p$pipe
                for t in "${KV_TESTS[@]}"; do FAILED[kv_${t#*:}$suffix/gort]=build; done
            done
        done
    fi
    go_peer kv
    [[ -z $GO_BIN ]] || sides+=(go)
    if command -v redis-server >/dev/null; then
        sides+=(redis)
        echo "# redis side: $(redis-server --version)" >&2
    else
        echo "compare.sh: no 'redis-server' command: skipping the redis side;" \
            "run 'bash benches/install-bench-deps.sh' to install it (Debian's redis-server)" >&2
    fi
    raise_nofile "$KV_MAX_CONNS" KV_CONNS

    echo "# redis-benchmark -t ping,set,get -q, 1 client thread, -n $KV_N_ (-n $KV_N_P_ with -P > 1) per test; $rounds rounds of: ${sides[*]}" >&2
    for ((round = 1; round <= rounds; round++)); do
        for conns in "${conns_list[@]}"; do
            for pipe in "${pipes[@]}"; do
                suffix=_c$conns
                ((pipe == 1)) || suffix+=_p$pipe
                ROUND_LINE="kv round $round/$rounds c$conns P$pipe:"
                for side in "${sides[@]}"; do
                    failed "kv_ping$suffix" "$side" && continue
                    kv_sample "$side" "$conns" "$pipe"
                done
                echo "$ROUND_LINE" >&2
            done
        done
    done
    for conns in "${conns_list[@]}"; do
        for pipe in "${pipes[@]}"; do
            suffix=_c$conns
            ((pipe == 1)) || suffix+=_p$pipe
            for t in "${KV_TESTS[@]}"; do
                if [[ ${t#*:} == ping_inline ]]; then
                    report "kv_ping_inline$suffix" "${sides[@]}" >/dev/null # spread only
                else
                    report "kv_${t#*:}$suffix" "${sides[@]}"
                fi
            done
        done
    done
}

usage() {
    echo "usage: bash benches/compare.sh METRIC" >&2
    echo "metrics:" >&2
    for m in "${ORDER[@]}"; do
        printf '  %-11s %s\n' "$m" "${METRICS[$m]}" >&2
    done
    printf '  %-11s %s\n' all "every metric above, in order" >&2
}

if [[ $# -ne 1 ]]; then
    usage
    exit 2
fi

case "$1" in
all) selected=("${ORDER[@]}") ;;
*)
    if [[ -z "${METRICS[$1]+set}" ]]; then
        echo "compare.sh: unknown metric '$1'" >&2
        usage
        exit 2
    fi
    selected=("$1")
    ;;
esac

cargo build --release -q -p gort-compare
# What was measured, and how busy the machine was, for the record.
if rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null); then
    git -C "$root" diff --quiet HEAD -- src 2>/dev/null || rev="$rev + uncommitted src/ changes"
    echo "# gort at $rev; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
fi
for m in "${selected[@]}"; do
    echo "# $m: ${METRICS[$m]}" >&2
    if declare -F "run_$m" >/dev/null; then
        "run_$m"
    else
        "$root/target/release/$m"
    fi
done
