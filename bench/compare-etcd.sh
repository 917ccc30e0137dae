#!/usr/bin/env bash
# compare-etcd.sh [--duration S] [--warmup S] [--out FILE]
#
# raftfs and etcd side by side on this machine (issue 6): the same loads,
# each on a fresh 3-member cluster on loopback with its data under /tmp
# (every write fsync'ed by both), the clients talking to the leader.
#
#   put at 1, 16 and 64 clients; linearizable get at 16 and 64;
#   serializable get at 64        raftfs bench / bench/etcd's etcdbench:
#                                 16-byte keys drawn uniformly from 100,000,
#                                 256-byte values, one connection per 8
#                                 clients, S s measured after the warm-up
#                                 (gets first write all 100,000 keys)
#   file writes and reads         bench/fsbench, 16 threads on the leader's
#                                 mount: open(O_TRUNC)+write+close and
#                                 open+read+close (compared with etcd's put
#                                 and linearizable get at 16 clients)
#   peak RSS                      VmHWM of each leader at the end of put c64
#
# Prints one `RATIO NAME VALUE target >= T met|NOT met` line per comparison
# (every ratio is raftfs over etcd, or etcd over raftfs, so that bigger is
# better for raftfs) and writes the figures, the ratios, the machine and
# two plots into FILE (default docs/benchmarks.md) between the lines
# `<!-- compare-etcd begin -->` and `<!-- compare-etcd end -->` (appended
# when absent; plots in img/ next to FILE).
#
# Defaults: --duration 15, --warmup 3 (7-8 minutes in all). Installs
# what it needs with apt-get (scripts/deps.sh, bench/etcd/build.sh,
# gnuplot) and builds raftfs with scripts/build.sh, unless RAFTFS_BIN and
# FSBENCH_BIN name binaries to use (ETCDBENCH_BIN likewise). Ports:
# raftfs 127.0.0.1:17501-17503 (RAFTFS_BASE_PORT, default 17500), etcd
# clients 32379/32479/32579 and peers 32380/32480/32580. Exit status 0 when
# every figure was measured (whether or not the targets are met), 1 if any
# is missing, 2 for a usage error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
duration=15
warmup=3
out=$root/docs/benchmarks.md

usage() {
    echo "usage: bench/compare-etcd.sh [--duration S] [--warmup S] [--out FILE]" >&2
    exit 2
}
is_seconds() { [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]; }
while [ $# -gt 0 ]; do
    case $1 in
    --duration)
        [ $# -ge 2 ] && is_seconds "$2" && awk -v d="$2" 'BEGIN { exit !(d >= 0.1) }' || {
            echo "compare-etcd: bad --duration (seconds, at least 0.1)" >&2
            usage
        }
        duration=$2
        shift 2
        ;;
    --warmup)
        [ $# -ge 2 ] && is_seconds "$2" || {
            echo "compare-etcd: bad --warmup (seconds, 0 or more)" >&2
            usage
        }
        warmup=$2
        shift 2
        ;;
    --out)
        [ $# -ge 2 ] && [ -n "$2" ] || usage
        out=$2
        shift 2
        ;;
    *) usage ;;
    esac
done
case $out in /*) ;; *) out=$PWD/$out ;; esac
[ -d "$(dirname "$out")" ] || {
    echo "compare-etcd: no directory $(dirname "$out") for --out" >&2
    exit 2
}

log() { echo "compare-etcd: $*" >&2; }

# ---- what it needs ----
sudo=
[ "$(id -u)" -eq 0 ] || sudo=sudo
"$root/scripts/deps.sh" >/dev/null
if [ -n "${RAFTFS_BIN:-}" ]; then
    raftfs=$RAFTFS_BIN
    fsbench=${FSBENCH_BIN:?compare-etcd: with RAFTFS_BIN, give FSBENCH_BIN too}
else
    "$root/scripts/build.sh" normal >/dev/null
    raftfs=$root/build/cli/raftfs
    fsbench=$root/build/bench/fsbench
fi
if ! command -v gnuplot >/dev/null; then
    log "installing gnuplot-nox (for the plots)"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null ||
        { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null; }
fi

work=$(mktemp -d /tmp/raftfs-compare-etcd.XXXXXX)
etcd_pids=()
raftfs_dir=""
lc=$root/examples/local-cluster.sh
export RAFTFS_BIN=$raftfs
export RAFTFS_BASE_PORT=${RAFTFS_BASE_PORT:-17500}

etcd_stop() {
    # SIGKILL: the data is thrown away, and a graceful stop of all three
    # takes seconds (the leader tries to hand over its leadership)
    local p
    for p in "${etcd_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    for p in "${etcd_pids[@]}"; do wait "$p" 2>/dev/null || true; done
    etcd_pids=()
}
raftfs_stop() {
    [ -n "$raftfs_dir" ] || return 0
    local pids="" k
    for k in 1 2 3; do pids="$pids $(cat "$raftfs_dir/data/$k/raftfs.lock" 2>/dev/null || true)"; done
    "$lc" stop "$raftfs_dir" >/dev/null 2>&1 || true
    for k in $pids; do
        for _ in $(seq 1 100); do
            kill -0 "$k" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$k" 2>/dev/null; then kill -9 "$k" 2>/dev/null || true; fi
    done
    raftfs_dir=""
}
cleanup() {
    etcd_stop
    raftfs_stop
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${ETCDBENCH_BIN:-}" ]; then
    etcdbench=$ETCDBENCH_BIN
else
    etcdbench=$work/etcdbench
    "$root/bench/etcd/build.sh" "$etcdbench" 2>"$work/etcd-build.log" || {
        cat "$work/etcd-build.log" >&2
        exit 1
    }
fi
for c in etcd etcdctl; do
    command -v "$c" >/dev/null || {
        log "no $c: install etcd-server and etcd-client (bench/etcd/build.sh does)"
        exit 1
    }
done

# ---- the clusters ----
etcd_cports=(32379 32479 32579)
etcd_pports=(32380 32480 32580)
etcd_eps="127.0.0.1:32379,127.0.0.1:32479,127.0.0.1:32579"
rep() { echo "127.0.0.1:$((RAFTFS_BASE_PORT + $1))"; }

port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
for p in "${etcd_cports[@]}" "${etcd_pports[@]}" $((RAFTFS_BASE_PORT + 1)) \
    $((RAFTFS_BASE_PORT + 2)) $((RAFTFS_BASE_PORT + 3)); do
    port_free "$p" || {
        log "port $p is in use: stop what listens there (or set RAFTFS_BASE_PORT)"
        exit 1
    }
done

etcd_start() { # DIR
    local d=$1 ic="" i
    mkdir -p "$d"
    for i in 0 1 2; do ic="$ic${ic:+,}m$i=http://127.0.0.1:${etcd_pports[$i]}"; done
    for i in 0 1 2; do
        # defaults otherwise: fsync on, snapshot-count 100000, heartbeat 100 ms
        etcd --name "m$i" --data-dir "$d/m$i" \
            --listen-client-urls "http://127.0.0.1:${etcd_cports[$i]}" \
            --advertise-client-urls "http://127.0.0.1:${etcd_cports[$i]}" \
            --listen-peer-urls "http://127.0.0.1:${etcd_pports[$i]}" \
            --initial-advertise-peer-urls "http://127.0.0.1:${etcd_pports[$i]}" \
            --initial-cluster "$ic" --initial-cluster-token compare-etcd \
            --initial-cluster-state new --logger zap --log-outputs "$d/m$i.log" \
            >"$d/m$i.out" 2>&1 &
        etcd_pids+=($!)
    done
    for _ in $(seq 1 150); do
        if ETCDCTL_API=3 etcdctl --endpoints "$etcd_eps" --dial-timeout=1s \
            endpoint health >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    log "etcd did not become healthy (logs: $d/m*.log)"
    return 1
}
etcd_leader() { # -> member index 0..2
    local i
    for _ in $(seq 1 50); do
        for i in 0 1 2; do
            if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:${etcd_cports[$i]}" \
                --dial-timeout=1s endpoint status -w simple 2>/dev/null |
                awk -F', ' '{ exit !($5 == "true") }'; then
                echo "$i"
                return 0
            fi
        done
        sleep 0.2
    done
    return 1
}
raftfs_start() { # DIR
    raftfs_dir=$1
    "$lc" start "$1" 3 >/dev/null
}
raftfs_leader() { # -> member id
    local k l
    for _ in $(seq 1 50); do
        for k in 1 2 3; do
            l=$("$raftfs" status --endpoints "$(rep "$k")" --timeout 1 2>/dev/null |
                sed -nE 's/.*"leader": ([0-9]+).*/\1/p') || true
            if [ -n "$l" ] && [ "$l" != 0 ]; then
                echo "$l"
                return 0
            fi
        done
        sleep 0.2
    done
    return 1
}
vmhwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true; }
# a raftfs member: its server and the processes it forks (the guard,
# fs/fs_guard.c, and libfuse's auto_unmount helper), added up
member_vmhwm_kb() {
    local total=0 p v
    for p in "$1" $(pgrep -P "$1" || true); do
        v=$(vmhwm_kb "$p")
        total=$((total + ${v:-0}))
    done
    [ "$total" -gt 0 ] && echo "$total"
    return 0
}

# ---- the loads ----
res=$work/results
mkdir -p "$res"
common=(--key-size 16 --value-size 256 --keys 100000 --key-order uniform
    --warmup "$warmup" --duration "$duration" --timeout 5 --json)
rss_raftfs=""
rss_raftfs_server=""
rss_etcd=""
failed=0

# Runs a client, its JSON into FILE; a client that failed to measure
# (no JSON) is noted.
measure() { # FILE CMD...
    local f=$1
    shift
    if ! "$@" >"$f" 2>"$f.err" && ! grep -q '"ops_per_s"' "$f"; then
        log "failed: $* ($(tail -1 "$f.err"))"
        failed=1
    elif [ -s "$f.err" ]; then
        log "note: $(tail -1 "$f.err")"
    fi
}

kv_raftfs() { # NAME OP CLIENTS
    local d=$work/raftfs-$1 l
    raftfs_start "$d"
    l=$(raftfs_leader) || { log "raftfs: no leader"; failed=1; raftfs_stop; rm -rf "$d"; return; }
    measure "$res/raftfs-$1.json" "$raftfs" bench --endpoints "$(rep "$l")" --op "$2" \
        --clients "$3" --connections $((($3 + 7) / 8)) "${common[@]}"
    if [ "$1" = put_c64 ]; then
        rss_raftfs=$(member_vmhwm_kb "$(cat "$d/data/$l/raftfs.lock")")
        rss_raftfs_server=$(vmhwm_kb "$(cat "$d/data/$l/raftfs.lock")")
    fi
    raftfs_stop
    rm -rf "$d"
}
kv_etcd() { # NAME OP CLIENTS
    local d=$work/etcd-$1 l
    etcd_start "$d" || { failed=1; etcd_stop; rm -rf "$d"; return; }
    l=$(etcd_leader) || { log "etcd: no leader"; failed=1; etcd_stop; rm -rf "$d"; return; }
    measure "$res/etcd-$1.json" "$etcdbench" --endpoints "127.0.0.1:${etcd_cports[$l]}" \
        --op "$2" --clients "$3" --connections $((($3 + 7) / 8)) "${common[@]}"
    [ "$1" = put_c64 ] && rss_etcd=$(vmhwm_kb "${etcd_pids[$l]}")
    etcd_stop
    rm -rf "$d"
}
fs_raftfs() { # NAME write|read
    local d=$work/raftfs-$1 l mnt
    raftfs_start "$d"
    l=$(raftfs_leader) || { log "raftfs: no leader"; failed=1; raftfs_stop; rm -rf "$d"; return; }
    mnt=$d/mnt/$l/fsbench
    mkdir "$mnt"
    if awk -v w="$warmup" 'BEGIN { exit !(w > 0) }'; then
        "$fsbench" "$mnt" --threads 16 --seconds "$warmup" --ops "$2" --json >/dev/null 2>&1 || true
    fi
    measure "$res/raftfs-$1.json" "$fsbench" "$mnt" --threads 16 --seconds "$duration" \
        --ops "$2" --json
    raftfs_stop
    rm -rf "$d"
}

scenarios=(put_c1:put:1 put_c16:put:16 put_c64:put:64 getl_c16:get:16 getl_c64:get:64
    gets_c64:sget:64)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)
timed() { # WHAT CMD...: runs CMD, logs how long it took
    local what=$1 t0=$SECONDS
    shift
    "$@"
    log "$what: $((SECONDS - t0)) s"
}
for s in "${scenarios[@]}"; do
    IFS=: read -r name op clients <<<"$s"
    timed "$name raftfs" kv_raftfs "$name" "$op" "$clients"
    timed "$name etcd" kv_etcd "$name" "$op" "$clients"
done
timed "fs_write_c16 raftfs" fs_raftfs fs_write_c16 write
timed "fs_read_c16 raftfs" fs_raftfs fs_read_c16 read
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
took=$(($(date +%s) - started))

# ---- figures ----
# get FILE FIELD: a number of a result (raftfs bench, etcdbench or fsbench
# JSON), or "" when missing.
get() {
    [ -s "$1" ] || return 0
    sed -nE "s/.*\"$2\": ?\"?([0-9.]+).*/\1/p" "$1" | head -1
}
fig() { # SYSTEM NAME FIELD: ops_per_s, p50 or p99 (ms)
    local f=$res/$1-$2.json
    case $2:$3 in
    fs_*:ops_per_s) get "$f" ops_per_s ;;
    fs_*:p50) awk -v v="$(get "$f" p50_us)" 'BEGIN { if (v != "") printf "%.3f", v / 1000 }' ;;
    fs_*:p99) awk -v v="$(get "$f" p99_us)" 'BEGIN { if (v != "") printf "%.3f", v / 1000 }' ;;
    *) get "$f" "$3" ;;
    esac
}
errs() { # SYSTEM NAME: the failed requests of a run, "" if none
    local n
    n=$(get "$res/$1-$2.json" errors)
    [ -n "$n" ] && [ "$n" != 0 ] && echo " ($n errors)"
    return 0
}
ratio() { # A B: A/B with 2 decimals, "" if either is missing or B is 0
    awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b }'
}

ratios=(
    "put_c1_ops|$(ratio "$(fig raftfs put_c1 ops_per_s)" "$(fig etcd put_c1 ops_per_s)")|2.5"
    "put_c16_ops|$(ratio "$(fig raftfs put_c16 ops_per_s)" "$(fig etcd put_c16 ops_per_s)")|3"
    "put_c64_ops|$(ratio "$(fig raftfs put_c64 ops_per_s)" "$(fig etcd put_c64 ops_per_s)")|5"
    "get_linearizable_c16_ops|$(ratio "$(fig raftfs getl_c16 ops_per_s)" "$(fig etcd getl_c16 ops_per_s)")|2"
    "get_linearizable_c64_ops|$(ratio "$(fig raftfs getl_c64 ops_per_s)" "$(fig etcd getl_c64 ops_per_s)")|3"
    "get_serializable_c64_ops|$(ratio "$(fig raftfs gets_c64 ops_per_s)" "$(fig etcd gets_c64 ops_per_s)")|3"
    "put_c64_p99_latency_etcd_over_raftfs|$(ratio "$(fig etcd put_c64 p99)" "$(fig raftfs put_c64 p99)")|1"
    "fs_write_c16_vs_etcd_put_c16|$(ratio "$(fig raftfs fs_write_c16 ops_per_s)" "$(fig etcd put_c16 ops_per_s)")|2"
    "fs_read_c16_vs_etcd_get_linearizable_c16|$(ratio "$(fig raftfs fs_read_c16 ops_per_s)" "$(fig etcd getl_c16 ops_per_s)")|1.5"
    "rss_etcd_over_raftfs|$(ratio "$rss_etcd" "$rss_raftfs")|2"
)
verdict() { # VALUE TARGET
    if [ -z "$1" ]; then
        echo "NOT measured"
    elif awk -v v="$1" -v t="$2" 'BEGIN { exit !(v >= t) }'; then
        echo met
    else
        echo "NOT met"
    fi
}
for r in "${ratios[@]}"; do
    IFS='|' read -r name value target <<<"$r"
    [ -n "$value" ] || failed=1
    echo "RATIO $name ${value:-n/a} target >= $target $(verdict "$value" "$target")"
done

# ---- plots ----
imgdir=$(dirname "$out")/img
mkdir -p "$imgdir"
plot_ops=compare-etcd-put-ops.png
plot_p99=compare-etcd-put-p99.png
{
    echo "# clients raftfs_ops etcd_ops raftfs_p99_ms etcd_p99_ms"
    for c in 1 16 64; do
        row="$c"
        for v in "$(fig raftfs put_c$c ops_per_s)" "$(fig etcd put_c$c ops_per_s)" \
            "$(fig raftfs put_c$c p99)" "$(fig etcd put_c$c p99)"; do
            row="$row ${v:-NaN}"
        done
        echo "$row"
    done
} >"$work/put.dat"
gnuplot <<GP
set terminal pngcairo size 720,440 font "sans,10"
set grid
set key top left
set logscale x 2
set xtics ("1" 1, "16" 16, "64" 64)
set xrange [0.8:80]
set xlabel "clients (closed loop, one request in flight each)"
set datafile missing "NaN"
set output "$imgdir/$plot_ops"
set title "put throughput, 3 members on one machine, 256-byte values"
set ylabel "puts/s"
set yrange [0:*]
plot "$work/put.dat" using 1:2 with linespoints lw 2 pt 7 title "raftfs", \
     "" using 1:3 with linespoints lw 2 pt 5 title "etcd"
set output "$imgdir/$plot_p99"
set title "put latency, 99th percentile"
set ylabel "p99 ms"
plot "$work/put.dat" using 1:4 with linespoints lw 2 pt 7 title "raftfs", \
     "" using 1:5 with linespoints lw 2 pt 5 title "etcd"
GP

# ---- the section ----
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
cpu=$(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
src=$(df -P /tmp | awk 'NR == 2 { print $1 }')
fstype=$(df -PT /tmp | awk 'NR == 2 { print $2 }')
dev=$(lsblk -no PKNAME "$src" 2>/dev/null | head -1 || true)
[ -n "$dev" ] || dev=$(basename "$src")
rot=$(cat "/sys/block/$dev/queue/rotational" 2>/dev/null || echo "?")
disk="/tmp on $src ($fstype), $dev rotational=$rot"
etcd_version=$(etcd --version 2>/dev/null | awk '/etcd Version/ { print $3 }')
label() {
    case $1 in
    put_c*) echo "put, ${1#put_c} client$([ "${1#put_c}" = 1 ] || echo s)" ;;
    getl_c*) echo "linearizable get, ${1#getl_c} clients" ;;
    gets_c*) echo "serializable get, ${1#gets_c} clients" ;;
    esac
}
{
    echo "<!-- compare-etcd begin -->"
    echo "<!-- written by bench/compare-etcd.sh: edits between these markers are replaced -->"
    echo "## raftfs and etcd side by side: \`bench/compare-etcd.sh\`"
    echo
    echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC'), raftfs $commit, etcd ${etcd_version:-?};"
    echo "$(nproc) CPUs ($cpu), $mem, Linux $(uname -r), $disk."
    echo "Load average $load_before before and $load_after after the run ($took s):"
    echo "figures taken next to other work are not comparable."
    echo
    echo "Each row: a fresh 3-member cluster of each system on loopback, data"
    echo "under /tmp (every write fsync'ed), clients on the leader, $warmup s of"
    echo "warm-up then $duration s measured. Key-value rows: \`raftfs bench\` and"
    echo "\`bench/etcd\`'s etcdbench (clientv3, gRPC), 16-byte keys drawn uniformly"
    echo "from 100,000 (all written first for the gets), 256-byte values, one"
    echo "connection per 8 clients. File rows: \`bench/fsbench\` with 16 threads on"
    echo "the leader's mount (linearizable), next to etcd's put and linearizable get"
    echo "at 16 clients. Latencies in ms, per request at the client."
    echo
    echo "| scenario | raftfs ops/s | raftfs p50 | raftfs p99 | etcd ops/s | etcd p50 | etcd p99 |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    for s in "${scenarios[@]}"; do
        IFS=: read -r name _ _ <<<"$s"
        printf '| %s | %s%s | %s | %s | %s%s | %s | %s |\n' "$(label "$name")" \
            "$(fig raftfs "$name" ops_per_s)" "$(errs raftfs "$name")" \
            "$(fig raftfs "$name" p50)" "$(fig raftfs "$name" p99)" \
            "$(fig etcd "$name" ops_per_s)" "$(errs etcd "$name")" \
            "$(fig etcd "$name" p50)" "$(fig etcd "$name" p99)"
    done
    printf '| files: open(O_TRUNC)+write+close, 16 threads (etcd: put, 16 clients) | %s | %s | %s | %s | %s | %s |\n' \
        "$(fig raftfs fs_write_c16 ops_per_s)" "$(fig raftfs fs_write_c16 p50)" \
        "$(fig raftfs fs_write_c16 p99)" "$(fig etcd put_c16 ops_per_s)" \
        "$(fig etcd put_c16 p50)" "$(fig etcd put_c16 p99)"
    printf '| files: open+read+close, 16 threads (etcd: linearizable get, 16 clients) | %s | %s | %s | %s | %s | %s |\n' \
        "$(fig raftfs fs_read_c16 ops_per_s)" "$(fig raftfs fs_read_c16 p50)" \
        "$(fig raftfs fs_read_c16 p99)" "$(fig etcd getl_c16 ops_per_s)" \
        "$(fig etcd getl_c16 p50)" "$(fig etcd getl_c16 p99)"
    echo
    echo "Peak RSS (VmHWM) of the leader at the end of put at 64 clients: raftfs"
    echo "${rss_raftfs:-?} kB (the server ${rss_raftfs_server:-?} kB, and its guard and auto_unmount"
    echo "helper processes), etcd ${rss_etcd:-?} kB."
    echo
    echo "| ratio (bigger is better for raftfs) | value | target | |"
    echo "|---|---:|---:|---|"
    for r in "${ratios[@]}"; do
        IFS='|' read -r name value target <<<"$r"
        echo "| $name | ${value:-n/a} | >= $target | $(verdict "$value" "$target") |"
    done
    echo
    echo "![put throughput against clients, raftfs and etcd](img/$plot_ops)"
    echo "![put p99 latency against clients, raftfs and etcd](img/$plot_p99)"
    echo "<!-- compare-etcd end -->"
} >"$work/section.md"

begin='<!-- compare-etcd begin -->'
end='<!-- compare-etcd end -->'
if [ -f "$out" ] && grep -qxF "$begin" "$out" && grep -qxF "$end" "$out"; then
    awk -v sec="$work/section.md" -v b="$begin" -v e="$end" '
        $0 == b { while ((getline line < sec) > 0) print line; skip = 1; next }
        $0 == e { skip = 0; next }
        !skip { print }' "$out" >"$work/out.md"
elif [ -f "$out" ]; then
    { cat "$out"; echo; cat "$work/section.md"; } >"$work/out.md"
else
    cp "$work/section.md" "$work/out.md"
fi
cat "$work/out.md" >"$out"
log "wrote $out (plots in $imgdir) in $took s of measuring"
exit "$failed"
