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
)
# The order `all` runs them in.
ORDER=(switch switch_ir stack yield spawn locked)

# A metric runs run_<metric> if defined, else the release binary of its name.
run_switch_ir() {
    bash "$root/benches/callgrind_switch.sh"
}

# The Go peers live in benches/go/ (stdlib only, no module downloads) and are
# built into target/go/. Sets GO_ARGS to `--go PATH` for the metric's
# binary; without a Go toolchain, to nothing (the Go lines are skipped),
# after saying how to install one. A Go build error stops the script.
go_peer() {
    local prog=$1
    GO_ARGS=()
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
}

run_yield() {
    go_peer yield
    "$root/target/release/yield" "${GO_ARGS[@]}"
}

run_spawn() {
    go_peer spawn
    "$root/target/release/spawn" "${GO_ARGS[@]}"
}

usage() {
    echo "usage: bash benches/compare.sh METRIC" >&2
    echo "metrics:" >&2
    for m in "${ORDER[@]}"; do
        printf '  %-10s %s\n' "$m" "${METRICS[$m]}" >&2
    done
    printf '  %-10s %s\n' all "every metric above, in order" >&2
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
