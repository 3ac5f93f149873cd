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
)
# The order `all` runs them in.
ORDER=(switch switch_ir stack)

# A metric runs run_<metric> if defined, else the release binary of its name.
run_switch_ir() {
    bash "$root/benches/callgrind_switch.sh"
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
for m in "${selected[@]}"; do
    echo "# $m: ${METRICS[$m]}" >&2
    if declare -F "run_$m" >/dev/null; then
        "run_$m"
    else
        "$root/target/release/$m"
    fi
done
