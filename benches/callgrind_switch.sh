#!/usr/bin/env bash
# Instructions per resume+suspend round trip, counted by callgrind, for gort
# and corosensei.
#
# Each side runs `switch --count SIDE N` for N = 1,000,000 and 2,000,000;
# the difference of the two totals divided by 1,000,000 is the count per
# round trip, with process start-up, coroutine creation and teardown
# cancelled out. It also counts gort on an unguarded stack (`gort-unguarded`)
# to show what the canary check adds to a round trip.
#
# No valgrind options are needed for the stack switches: callgrind (3.19)
# runs both sides without a "client switching stacks?" warning, and its Ir
# count does not depend on stack tracking anyway.
#
# Usage: bash benches/callgrind_switch.sh   (builds the release binary first)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v valgrind >/dev/null; then
    echo "callgrind_switch.sh: valgrind is not installed (apt-get install valgrind)" >&2
    exit 1
fi

cargo build --release -q -p gort-compare --bin switch
bin="$root/target/release/switch"

# Total instructions (Ir) of one run, from callgrind's
# "==PID== Collected : <Ir>" line on stderr.
collected() {
    local side=$1 n=$2 log
    log=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" --count "$side" "$n" 2>&1)
    awk '/Collected :/ { print $NF; found = 1 } END { exit !found }' <<<"$log" || {
        echo "callgrind_switch.sh: no 'Collected' line for $side $n:" >&2
        echo "$log" >&2
        exit 1
    }
}

declare -A per
for side in gort corosensei gort-unguarded; do
    one=$(collected "$side" 1000000)
    two=$(collected "$side" 2000000)
    per[$side]=$(awk -v a="$one" -v b="$two" 'BEGIN { printf "%.2f", (b - a) / 1000000 }')
    echo "callgrind $side: Ir(1M)=$one Ir(2M)=$two" >&2
done

ratio=$(awk -v g="${per[gort]}" -v c="${per[corosensei]}" 'BEGIN { printf "%.3f", g / c }')
echo "instructions per round trip gort=${per[gort]} corosensei=${per[corosensei]} ratio=$ratio"
# For information: the same gort loop on an unguarded stack, whose canary is
# checked at every switch.
echo "instructions per round trip gort_unguarded=${per[gort-unguarded]} gort=${per[gort]}"
