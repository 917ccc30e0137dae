#!/usr/bin/env bash
# run-cluster-bench.sh [--seconds S] [--failovers N] [--behind W] [--only PART]
#
# Measures a local 3-member cluster (examples/local-cluster.sh, data under
# /tmp on this machine's disk, every log write fsync'ed):
#   throughput  raftfs bench put and linearizable get at 1, 16 and 64 clients
#               (S seconds each, default 10, 256-byte values)
#   failover    kill -9 of the leader, then the time until a write through
#               another member's mount succeeds; N times (default 10),
#               median and max
#   catchup     a member stopped while W writes (default 100000) are
#               committed, then restarted: the time until it has applied
#               everything the leader had committed, and how (log or
#               snapshot)
# --only throughput|failover|catchup runs one part. Prints markdown.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=10
failovers=10
behind=100000
only=""
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --failovers) failovers=$2; shift 2 ;;
    --behind) behind=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *)
        echo "usage: bench/run-cluster-bench.sh [--seconds S] [--failovers N] [--behind W] [--only throughput|failover|catchup]" >&2
        exit 2
        ;;
    esac
done
"$root/scripts/deps.sh" >/dev/null
"$root/scripts/build.sh" normal >/dev/null
export RAFTFS_BIN=$root/build/cli/raftfs
export RAFTFS_BASE_PORT=${RAFTFS_BASE_PORT:-17400}
lc=$root/examples/local-cluster.sh
work=$(mktemp -d /tmp/raftfs-clbench.XXXXXX)
cl=$work/cluster
cleanup() {
    "$lc" stop "$cl" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

ep() { echo "127.0.0.1:$((RAFTFS_BASE_PORT + $1))"; }
eps="$(ep 1),$(ep 2),$(ep 3)"
now_ms() { echo $(($(date +%s%N) / 1000000)); }
field() { sed -nE "s/.*\"$1\": \"?([0-9.]+).*/\1/p"; }
leader() {
    local k l
    for k in 1 2 3; do
        l=$("$RAFTFS_BIN" status --endpoints "$(ep "$k")" --timeout 1 2>/dev/null | field leader) || true
        if [ -n "$l" ] && [ "$l" != 0 ]; then
            echo "$l"
            return 0
        fi
    done
    return 1
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

want() { [ -z "$only" ] || [ "$only" = "$1" ]; }

"$lc" start "$cl" 3 >/dev/null

if want throughput; then
    echo "### raftfs bench, 3 members, 256-byte values, $seconds s each"
    echo
    echo "| op | clients | ops/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |"
    echo "|---|---|---|---|---|---|---|---|"
    for op in put get; do
        for c in 1 16 64; do
            j=$("$RAFTFS_BIN" bench --endpoints "$eps" --op $op --clients $c --duration "$seconds" --json)
            printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$op" "$c" \
                "$(echo "$j" | field ops_per_s)" "$(echo "$j" | field p50)" \
                "$(echo "$j" | field p90)" "$(echo "$j" | field p99)" \
                "$(echo "$j" | field p999)" "$(echo "$j" | field max)"
        done
    done
    echo
fi

if want failover; then
    times=()
    for i in $(seq 1 "$failovers"); do
        l=$(leader)
        o=$(((l % 3) + 1))
        echo "before $i" >"$cl/mnt/$o/failover"
        kill -9 "$(cat "$cl/data/$l/raftfs.lock")"
        start=$(now_ms)
        until echo "after $i" >"$cl/mnt/$o/failover" 2>/dev/null; do sleep 0.01; done
        times+=($(($(now_ms) - start)))
        "$lc" kill "$cl" "$l" >/dev/null # unmounts what is left of it
        "$lc" restart "$cl" "$l" >/dev/null
        # wait until the restarted member is back in the cluster
        until [ "$(cat "$cl/mnt/$l/failover" 2>/dev/null)" = "after $i" ]; do sleep 0.05; done
        sleep 1
    done
    echo "### failover: leader kill -9 to the first successful write through another member's mount"
    echo
    echo "runs $failovers, median $(printf '%s\n' "${times[@]}" | median) ms, max $(printf '%s\n' "${times[@]}" | sort -n | tail -1) ms (all: ${times[*]})"
    echo
fi

if want catchup; then
    l=$(leader)
    f=$(((l % 3) + 1))
    "$lc" kill "$cl" "$f" >/dev/null
    # W writes through the other two (closed loop, 64 clients)
    others="$(ep "$l"),$(ep $(((f % 3) + 1)))"
    "$RAFTFS_BIN" bench --endpoints "$others" --op put --clients 64 --keys "$behind" \
        --requests "$behind" --duration 3600 --json >"$work/fill.json"
    target=$("$RAFTFS_BIN" status --endpoints "$(ep "$l")" | field commit)
    start=$(now_ms)
    "$lc" restart "$cl" "$f" >/dev/null
    until a=$("$RAFTFS_BIN" status --endpoints "$(ep "$f")" --timeout 1 2>/dev/null | field applied) &&
        [ -n "$a" ] && [ "$a" -ge "$target" ]; do
        sleep 0.05
    done
    ms=$(($(now_ms) - start))
    how="the log"
    grep -q "installed a snapshot" "$cl/data/$f/raftfs.log" && how="a snapshot"
    echo "### catch-up"
    echo
    echo "member $f restarted $(field ops <"$work/fill.json") writes behind (leader's commit index $target): applied all of it $ms ms after the restart began, by $how ($(field ops_per_s <"$work/fill.json") writes/s while it was down)"
fi
