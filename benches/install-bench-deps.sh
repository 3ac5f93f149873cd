#!/usr/bin/env bash
# Installs the Debian packages benches/ needs beyond Rust: valgrind
# (callgrind, for `compare.sh switch_ir` and profiling), Go (golang-go,
# Go 1.19 on Debian 12: the Go side of `compare.sh yield`, `spawn`,
# `timers`, `echo`, `pingpong`, `mutex`, `pipeline`, `idle_memory`, `kv`
# and `http`), wrk (the load of `compare.sh http`), redis-tools
# (redis-benchmark, the load of `compare.sh kv`, and redis-cli) and
# redis-server (the redis side of `compare.sh kv`).
# Idempotent: installs only what is missing. Needs root (or sudo) and
# apt-get.
#
#   bash benches/install-bench-deps.sh
set -euo pipefail

pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have valgrind || pkgs+=(valgrind)
have go || pkgs+=(golang-go)
have wrk || pkgs+=(wrk)
have redis-benchmark || pkgs+=(redis-tools)
have redis-server || pkgs+=(redis-server)

if [ ${#pkgs[@]} -eq 0 ]; then
    echo "install-bench-deps: everything is already installed"
    exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-bench-deps: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
case " ${pkgs[*]} " in
*" redis-server "*)
    # compare.sh starts its own redis-server on a free port for every
    # sample; the package's service (port 6379) is not needed.
    echo "install-bench-deps: Debian may have started the redis-server service on port 6379;" \
        "benches/ does not use it ('systemctl disable --now redis-server' stops it)"
    ;;
esac
