#!/usr/bin/env bash
# build.sh [normal|asan|all] - configures and builds raftfs: build/ (the
# normal build) and build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-normal}
jobs=$(nproc 2>/dev/null || echo 2)

build() { # DIR CMAKE-ARGS...
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    echo "build: $dir ok"
}

case $what in
normal) build build ;;
asan) build build-asan -DRAFTFS_SANITIZE=ON ;;
all) build build && build build-asan -DRAFTFS_SANITIZE=ON ;;
*) echo "usage: scripts/build.sh [normal|asan|all]" >&2; exit 2 ;;
esac
