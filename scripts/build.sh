#!/usr/bin/env bash
# build.sh [normal|asan|all] - configures and builds raftfs: build/ (the
# normal build) and build-asan/ (AddressSanitizer + UndefinedBehaviorSanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-normal}
jobs=$(nproc 2>/dev/null || echo 2)

# Ninja (scripts/deps.sh installs it) builds a fresh tree in about three
# quarters of make's time here. A tree configured before keeps its generator
# (cmake refuses to change it).
generator() { # DIR
    if [ ! -f "$1/CMakeCache.txt" ] && command -v ninja >/dev/null; then
        echo "-GNinja"
    fi
}

build() { # DIR CMAKE-ARGS...
    local dir=$1
    shift
    cmake $(generator "$dir") -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
    cmake --build "$dir" -j "$jobs" >/dev/null
    echo "build: $dir ok"
}

case $what in
normal) build build ;;
asan) build build-asan -DRAFTFS_SANITIZE=ON ;;
all) build build && build build-asan -DRAFTFS_SANITIZE=ON ;;
*) echo "usage: scripts/build.sh [normal|asan|all]" >&2; exit 2 ;;
esac
