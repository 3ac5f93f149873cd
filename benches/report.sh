#!/usr/bin/env bash
# The comparison report: every comparison of benches/compare.sh in one
# sitting, on this machine, written up as target/bench-report/report.md
# with charts of the ratios: target/bench-report/ratios.svg (every
# `compare` line) and targets.svg (the lines with a target).
#
# Usage: bash benches/report.sh            (about 15-20 minutes on 2 cores)
#        QUICK=1 bash benches/report.sh    (a smoke run of a few minutes:
#                                           fewer rounds, shorter runs)
#
# It first installs what the peers need if it is missing (Go, wrk,
# redis-tools, redis-server, valgrind: benches/install-bench-deps.sh, which
# needs root or sudo; REPORT_NO_INSTALL=1 skips that), then runs
# `compare.sh METRIC` for every metric of REPORT_METRICS (default: switch
# yield spawn timers echo pingpong mutex pipeline idle_memory kv http),
# keeping each one's `compare` lines (target/bench-report/METRIC.out) and
# its detail (METRIC.log), and finally writes the table (report_chart,
# from the gort-compare package: targets, met or not), the chart and the
# machine's description. A metric that fails is noted in the report and
# the others still run. Every variable compare.sh reads (ECHO_SECS,
# KV_ROUNDS, ...) can be set to override the defaults, QUICK's included.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
out="$root/target/bench-report"
trap 'exit 130' INT
trap 'exit 143' TERM

quick=${QUICK:-0}
[[ $quick == 0 || $quick == 1 ]] || { echo "report.sh: QUICK must be 0 or 1, not '$quick'" >&2; exit 2; }
read -r -a metrics <<<"${REPORT_METRICS:-switch yield spawn timers echo pingpong mutex pipeline idle_memory kv http}"

if [[ $quick == 1 ]]; then
    # Fewer rounds and shorter runs everywhere: a check that every part
    # works, not a measurement.
    export COMPARE_ROUNDS=${COMPARE_ROUNDS:-3}
    export TIMERS_ROUNDS=${TIMERS_ROUNDS:-1} IDLE_ROUNDS=${IDLE_ROUNDS:-1}
    export ECHO_SECS=${ECHO_SECS:-2} ECHO_ROUNDS=${ECHO_ROUNDS:-1}
    export HTTP_SECS=${HTTP_SECS:-2} HTTP_ROUNDS=${HTTP_ROUNDS:-1}
    export KV_ROUNDS=${KV_ROUNDS:-1} KV_N=${KV_N:-20000} KV_N_P16=${KV_N_P16:-200000}
fi

if [[ ${REPORT_NO_INSTALL:-0} != 1 ]]; then
    bash "$root/benches/install-bench-deps.sh" ||
        echo "report.sh: could not install the benchmark dependencies; the sides that need them will be missing or failed" >&2
fi

mkdir -p "$out"
rm -f "$out"/*.out "$out"/*.log "$out"/*.svg "$out/compare.txt" "$out/table.md" "$out/report.md"

# The machine, before the runs.
first() { "$@" 2>&1 | head -n 1 || true; }
cpu=$(grep -m1 -E '^(model name|Model Name|Hardware)' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')
[[ -n $cpu ]] || cpu=$(LC_ALL=C lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
[[ -n $cpu ]] || cpu=unknown
cores="$(nproc) online ($(grep -c '^processor' /proc/cpuinfo 2>/dev/null || echo '?') in /proc/cpuinfo)"
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || echo unknown)
kernel=$(uname -srm)
os=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-}")
virt=$(systemd-detect-virt 2>/dev/null || true)
rustc_v=$(first rustc -V)
go_v=$(command -v go >/dev/null && first go version || echo "not installed")
redis_v=$(command -v redis-server >/dev/null && redis-server --version | sed -n 's/.*v=\([^ ]*\).*/redis-server \1/p' || echo "not installed")
rb_v=$(command -v redis-benchmark >/dev/null && first redis-benchmark --version || echo "not installed")
wrk_v=$(command -v wrk >/dev/null && (wrk -v 2>&1 || true) | head -n 1 | cut -d' ' -f1-3 || echo "not installed")
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
date_start=$(date -u '+%Y-%m-%d %H:%M UTC')
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if ! git -C "$root" diff --quiet HEAD -- src 2>/dev/null; then rev+=" (with uncommitted src/ changes)"; fi

echo "report.sh: ${#metrics[@]} metrics ($([[ $quick == 1 ]] && echo 'QUICK=1 smoke run' || echo 'full run')); results in $out" >&2
cargo build --release -q -p gort-compare

declare -A took=() status=()
t_all=$SECONDS
i=0
for m in "${metrics[@]}"; do
    i=$((i + 1))
    echo "report.sh: [$i/${#metrics[@]}] $m ..." >&2
    t0=$SECONDS
    rc=0
    bash "$root/benches/compare.sh" "$m" >"$out/$m.out" 2>"$out/$m.log" || rc=$?
    took[$m]=$((SECONDS - t0))
    n=$(grep -c '^compare ' "$out/$m.out" || true)
    if ((rc == 0)); then
        status[$m]="ok, $n lines"
    else
        status[$m]="**failed** (exit $rc), $n lines; see $m.log"
        echo "report.sh: $m failed (exit $rc); the end of its log:" >&2
        tail -n 5 "$out/$m.log" >&2
    fi
    grep '^compare ' "$out/$m.out" >>"$out/compare.txt" || true
    sed 's/^/    /' "$out/$m.out" >&2
    echo "report.sh: $m took ${took[$m]} s" >&2
done
total=$((SECONDS - t_all))
touch "$out/compare.txt"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

title="gort vs its peers: ratios gort/peer, $date_start, $(nproc) cores, $cpu"
"$root/target/release/report_chart" "$out/compare.txt" --svg "$out/ratios.svg" --table "$out/table.md" \
    --title "$title"
"$root/target/release/report_chart" "$out/compare.txt" --svg "$out/targets.svg" --only-targets \
    --title "$title (the lines with a target)"

mins() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
{
    echo "# gort comparison report"
    echo
    echo "Generated by \`$([[ $quick == 1 ]] && echo 'QUICK=1 ')bash benches/report.sh\` on $date_start, gort at $rev, in $(mins "$total")."
    if [[ $quick == 1 ]]; then
        echo
        echo "**QUICK=1: a smoke run** (1 round or 3 alternations per metric, 2 s load runs): the figures are too noisy to compare; run \`bash benches/report.sh\` for the report."
    fi
    echo
    echo "Every comparison alternates gort and its peers within one run (rounds of every side in turn) and compares medians; see \`benches/README.md\` for what each metric measures. Ratios are gort/peer: for time and memory (↓) below 1 favours gort, for requests per second (↑) above 1 does."
    echo
    echo "## Machine"
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| CPU | $cpu |"
    echo "| cores | $cores |"
    echo "| memory | $mem |"
    echo "| virtualisation | ${virt:-unknown} |"
    echo "| OS | ${os:-unknown} |"
    echo "| kernel | $kernel |"
    echo "| Rust | $rustc_v |"
    echo "| Go | $go_v |"
    echo "| redis | $redis_v; $rb_v |"
    echo "| wrk | $wrk_v |"
    echo "| load average (1, 5, 15 min) | $load_start at the start, $load_end at the end |"
    echo
    echo "## Results"
    echo
    echo "The lines with a target (from the project's issues): green met, red missed; the black tick is the target."
    echo
    echo "![gort/peer ratios of the lines with a target](targets.svg)"
    echo
    cat "$out/table.md"
    echo
    echo "Every line:"
    echo
    echo "![gort/peer ratios of every line](ratios.svg)"
    echo
    echo "## Runs"
    echo
    echo "| metric | time | status |"
    echo "|---|---:|---|"
    for m in "${metrics[@]}"; do
        echo "| \`$m\` | $(mins "${took[$m]}") | ${status[$m]} |"
    done
    echo
    echo "The spread of every side's samples (median, min, max) is in \`target/bench-report/METRIC.log\`."
    echo
    echo "## The \`compare\` lines"
    echo
    echo '```text'
    cat "$out/compare.txt"
    echo '```'
} >"$out/report.md"
echo "report.sh: wrote $out/report.md, ratios.svg and targets.svg in $(mins "$total")" >&2
