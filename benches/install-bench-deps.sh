#!/usr/bin/env bash
# Installs the Debian packages benches/ needs beyond Rust: valgrind
# (callgrind, for `compare.sh switch_ir` and profiling) and Go (golang-go,
# Go 1.19 on Debian 12, the Go side of `compare.sh yield`, `spawn`, `timers`
# and `echo`).
# Idempotent: installs only what is missing. Needs root (or sudo) and
# apt-get.
#
#   bash benches/install-bench-deps.sh
set -euo pipefail

pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have valgrind || pkgs+=(valgrind)
have go || pkgs+=(golang-go)

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
