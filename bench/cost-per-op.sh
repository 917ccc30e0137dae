#!/usr/bin/env bash
# cost-per-op.sh - what one request costs a 3-member raftfs cluster: CPU
# time of each member and of the load generator per request, and the disk
# writes per request (from /proc/diskstats of the device under the data).
#
#   bench/cost-per-op.sh [--op put|get|sget] [--clients N] [--keys N]
#                        [--seconds S] [--perf FILE]
#
# Starts a cluster with examples/local-cluster.sh (data under a new
# directory in /tmp, ports RAFTFS_BASE_PORT+1..3, default 17600), runs
# `raftfs bench` against the leader (16-byte keys drawn uniformly, 256-byte
# values, 8 clients per connection) for 2 s of warm-up and S seconds
# (default 8), measures the middle S-1 seconds, and stops everything it
# started. --perf FILE also records `perf record -a -g` for 5 s into FILE
# (see docs/profile.md for reading it). The binary is $RAFTFS_BIN or
# build/cli/raftfs. A benchmark, not a test: nothing here asserts a time.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
op=put clients=64 keys=100000 secs=8 perf_out=""
while [ $# -gt 0 ]; do
    case $1 in
    --op) op=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --keys) keys=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    --perf) perf_out=$2; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "cost-per-op.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case $secs in '' | *[!0-9]*) echo "cost-per-op.sh: --seconds takes whole seconds (2 or more)" >&2; exit 2 ;; esac
[ "$secs" -ge 2 ] || { echo "cost-per-op.sh: --seconds takes 2 or more" >&2; exit 2; }
bin=${RAFTFS_BIN:-$root/build/cli/raftfs}
[ -x "$bin" ] || "$root/scripts/build.sh" normal >/dev/null
export RAFTFS_BIN=$bin RAFTFS_BASE_PORT=${RAFTFS_BASE_PORT:-17600}
lc=$root/examples/local-cluster.sh
d=$(mktemp -d /tmp/raftfs-cost.XXXXXX)
bench_pid=""
cleanup() {
    # "|| true": under set -e a failed kill (the bench already gone) would
    # end the handler here and leave the cluster running
    [ -z "$bench_pid" ] || kill "$bench_pid" 2>/dev/null || true
    "$lc" stop "$d" >/dev/null 2>&1 || true
    rm -rf "$d"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$lc" start "$d" 3 >/dev/null
leader=""
for _ in $(seq 1 50); do
    for k in 1 2 3; do
        leader=$("$bin" status --endpoints "127.0.0.1:$((RAFTFS_BASE_PORT + k))" --timeout 1 2>/dev/null |
            sed -nE 's/.*"leader": ([0-9]+).*/\1/p') || true
        [ -n "$leader" ] && [ "$leader" != 0 ] && break 2
    done
    sleep 0.2
done
[ -n "$leader" ] && [ "$leader" != 0 ] || { echo "cost-per-op.sh: no leader" >&2; exit 1; }
pids=()
for k in 1 2 3; do pids+=("$(cat "$d/data/$k/raftfs.lock")"); done
dev=$(df --output=source /tmp | tail -1)
dev=${dev##*/}

cpu_ticks() { # PID: user + system ticks; fails if PID is gone
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || {
        echo "cost-per-op.sh: process $1 ended before the measurement did (a member died, or --perf took longer than the run: use more --seconds)" >&2
        return 1
    }
}
disk() { awk -v d="$dev" '$3 == d { print $8, $10 }' /proc/diskstats; }

"$bin" bench --endpoints "127.0.0.1:$((RAFTFS_BASE_PORT + leader))" --op "$op" \
    --clients "$clients" --connections $(((clients + 7) / 8)) --key-size 16 --value-size 256 \
    --keys "$keys" --key-order uniform --warmup 2 --duration "$secs" --json >"$d/bench.json" &
bench_pid=$!
bp=$bench_pid
sleep 2.2
declare -A c0 c1
for p in "${pids[@]}" "$bp"; do c0[$p]=$(cpu_ticks "$p"); done
d0=$(disk)
t0=$(cut -d' ' -f1 /proc/uptime)
if [ -n "$perf_out" ] && [ "$secs" -ge 7 ]; then
    # perf writes its file after the 5 s: the time it took counts against the run
    ps0=$(cut -d' ' -f1 /proc/uptime)
    perf record -a -g -o "$perf_out" -- sleep 5 >/dev/null 2>&1 || echo "perf record failed" >&2
    left=$(awk -v a="$ps0" -v b="$(cut -d' ' -f1 /proc/uptime)" -v s="$secs" 'BEGIN { l = s - 1 - (b - a); printf "%.1f", (l > 0 ? l : 0) }')
    sleep "$left"
else
    sleep $((secs - 1))
fi
for p in "${pids[@]}" "$bp"; do c1[$p]=$(cpu_ticks "$p"); done
d1=$(disk)
t1=$(cut -d' ' -f1 /proc/uptime)
wait "$bench_pid" || true
bench_pid=""
ops=$(sed -nE 's/.*"ops_per_s": ([0-9.]+).*/\1/p' "$d/bench.json")
p50=$(sed -nE 's/.*"p50": ([0-9.]+).*/\1/p' "$d/bench.json")
p99=$(sed -nE 's/.*"p99": ([0-9.]+).*/\1/p' "$d/bench.json")
[ -n "$ops" ] || { echo "cost-per-op.sh: the bench gave no result" >&2; exit 1; }
hz=$(getconf CLK_TCK)
per_op() { # TICKS0 TICKS1: CPU microseconds per request
    awk -v a="$1" -v b="$2" -v t0="$t0" -v t1="$t1" -v o="$ops" -v hz="$hz" \
        'BEGIN { printf "%.1f", (b - a) / hz / (t1 - t0) / o * 1e6 }'
}
echo "$op, $clients clients, $keys keys: $ops ops/s, p50 $p50 ms, p99 $p99 ms (leader: member $leader)"
for k in 1 2 3; do
    p=${pids[$((k - 1))]}
    echo "  member $k CPU per request: $(per_op "${c0[$p]}" "${c1[$p]}") us"
done
echo "  bench CPU per request: $(per_op "${c0[$bp]}" "${c1[$bp]}") us"
if [ -z "$d0" ] || [ -z "$d1" ]; then
    echo "  disk: not measured (/proc/diskstats has no device $dev, which holds /tmp)"
    exit 0
fi
read -r w0 s0 <<<"$d0"
read -r w1 s1 <<<"$d1"
awk -v w="$((w1 - w0))" -v s="$((s1 - s0))" -v t0="$t0" -v t1="$t1" -v o="$ops" -v dev="$dev" \
    'BEGIN { n = (t1 - t0) * o; printf "  disk (%s, all 3 members): %.2f writes and %.1f KiB written per request\n", dev, w / n, s * 512 / 1024 / n }'
