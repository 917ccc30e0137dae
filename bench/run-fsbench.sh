#!/usr/bin/env bash
# run-fsbench.sh [--seconds S] [--reps R] - file operations through a
# raftfs mount next to tmpfs (the machine's ceiling), 1 and 4 threads,
# 256-byte values; prints a markdown table of medians of R runs.
# Data lives under /tmp (a real disk: every raftfs write is fsync'ed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=3
reps=3
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    *) echo "usage: bench/run-fsbench.sh [--seconds S] [--reps R]" >&2; exit 2 ;;
    esac
done
"$root/scripts/deps.sh" >/dev/null
"$root/scripts/build.sh" normal >/dev/null
bin=$root/build/cli/raftfs
fsbench=$root/build/bench/fsbench

work=$(mktemp -d /tmp/raftfs-fsbench.XXXXXX)
shm=$(mktemp -d /dev/shm/raftfs-fsbench.XXXXXX)
mkdir "$work/mnt"
cleanup() {
    fusermount3 -u "$work/mnt" 2>/dev/null || true
    local pid
    pid=$(cat "$work/data/raftfs.lock" 2>/dev/null || true)
    for _ in $(seq 1 50); do [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -rf "$work" "$shm"
}
trap cleanup EXIT
"$bin" mount "$work/mnt" --data "$work/data" >/dev/null

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

measure() { # DIR THREADS OP -> median ops/s
    for _ in $(seq 1 "$reps"); do
        "$fsbench" "$1" --threads "$2" --seconds "$seconds" --ops "$3" --json |
            sed -E 's/.*"ops_per_s":([0-9]+).*/\1/'
    done | median
}

echo "| where | threads | open(O_TRUNC)+write+close /s | open+read+close /s | stat /s |"
echo "|---|---|---|---|---|"
for where in raftfs tmpfs; do
    dir=$work/mnt
    [ $where = tmpfs ] && dir=$shm
    for t in 1 4; do
        w=$(measure "$dir" "$t" write)
        r=$(measure "$dir" "$t" read)
        s=$(measure "$dir" "$t" stat)
        echo "| $where | $t | $w | $r | $s |"
    done
done
