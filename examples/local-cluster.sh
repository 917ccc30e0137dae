#!/usr/bin/env bash
# local-cluster.sh - a raftfs cluster of N members on this machine (loopback),
# each mounted: the main job, and what the tests build on.
#
#   examples/local-cluster.sh start [DIR [N]]   set up (deps, build) and start N members
#                                               (default .local-cluster in the repository,
#                                               3 members); returns once every mount is
#                                               ready and a leader is elected
#   examples/local-cluster.sh stop [DIR]        unmount and stop every member (also
#                                               members that joined, DIR/data/K)
#   examples/local-cluster.sh kill DIR K        SIGKILL member K (its mount goes away)
#   examples/local-cluster.sh restart DIR K     start member K again
#   examples/local-cluster.sh status [DIR]      each member's view (raftfs status)
#
# Member K keeps its data in DIR/data/K, is mounted at DIR/mnt/K and serves
# peers and clients on 127.0.0.1:(RAFTFS_BASE_PORT + K) (base 7400). The
# binary is $RAFTFS_BIN, or build/cli/raftfs (built here if missing).
# With RAFTFS_METRICS_BASE_PORT set, member K also serves GET /metrics and
# GET /health on 127.0.0.1:(RAFTFS_METRICS_BASE_PORT + K) (--metrics-addr).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-start}
dir=${2:-$root/.local-cluster}
base=${RAFTFS_BASE_PORT:-7400}

bin() {
    if [ -n "${RAFTFS_BIN:-}" ]; then
        echo "$RAFTFS_BIN"
    else
        echo "$root/build/cli/raftfs"
    fi
}

members() { # the N the cluster was started with
    cat "$dir/members" 2>/dev/null || echo 3
}

peers() {
    local n=$1 list="" k
    for k in $(seq 1 "$n"); do
        list="${list:+$list,}$k=127.0.0.1:$((base + k))"
    done
    echo "$list"
}

endpoints() {
    local n=$1 list="" k
    for k in $(seq 1 "$n"); do
        list="${list:+$list,}127.0.0.1:$((base + k))"
    done
    echo "$list"
}

start_member() { # K N
    local k=$1 n=$2 mnt=$dir/mnt/$1
    mkdir -p "$mnt" "$dir/data"
    if ! stat "$mnt" >/dev/null 2>&1; then
        fusermount3 -u "$mnt" 2>/dev/null || true # a dead mount left by a crash
    fi
    if mountpoint -q "$mnt" 2>/dev/null; then
        return 0
    fi
    local metrics=()
    if [ -n "${RAFTFS_METRICS_BASE_PORT:-}" ]; then
        metrics=(--metrics-addr "127.0.0.1:$((RAFTFS_METRICS_BASE_PORT + k))")
    fi
    "$(bin)" mount "$mnt" --data "$dir/data/$k" --id "$k" --peers "$(peers "$n")" \
        --cluster-token "local-cluster" "${metrics[@]}" ${RAFTFS_MOUNT_OPTS:-} >/dev/null
}

wait_leader() { # N
    local n=$1 i k
    for i in $(seq 1 200); do
        for k in $(seq 1 "$n"); do
            if "$(bin)" status --endpoints "127.0.0.1:$((base + k))" --timeout 1 2>/dev/null |
                grep -q '"leader": [1-9]'; then
                return 0
            fi
        done
        sleep 0.05
    done
    echo "no leader was elected" >&2
    return 1
}

stop_member() { # K
    local k=$1 mnt=$dir/mnt/$1 pid
    pid=$(cat "$dir/data/$k/raftfs.lock" 2>/dev/null || true)
    if mountpoint -q "$mnt" 2>/dev/null || ! stat "$mnt" >/dev/null 2>&1; then
        fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null || true
    fi
    if [ -n "$pid" ]; then
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" = Z ] && break
            sleep 0.05
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
}

case $cmd in
start)
    n=${3:-3}
    if [ -z "${RAFTFS_BIN:-}" ]; then
        "$root/scripts/deps.sh"
        "$root/scripts/build.sh" normal
    fi
    mkdir -p "$dir"
    echo "$n" >"$dir/members"
    for k in $(seq 1 "$n"); do
        start_member "$k" "$n"
    done
    wait_leader "$n"
    if [ -t 1 ] || [ "${2:-}" = "" ]; then
        rel=${dir#"$PWD"/}
        cat <<TXT
A raftfs cluster of $n members is running; member K is mounted at $rel/mnt/K.
Try:

    echo hi > $rel/mnt/1/hello; cat $rel/mnt/2/hello; ls -la $rel/mnt/3
    mkdir -p $rel/mnt/2/app && echo "postgres://db" > $rel/mnt/2/app/db_url
    getfattr -d -m - $rel/mnt/3/app/db_url        # revisions of the key
    build/cli/raftfs get /app/db_url --endpoints $(endpoints "$n")
    build/cli/raftfs status --endpoints 127.0.0.1:$((base + 1))
    cat $rel/mnt/1/.raftfs/members; grep raftfs_term $rel/mnt/1/.raftfs/metrics
    build/cli/raftfs bench --endpoints $(endpoints "$n") --clients 16 --duration 5
    examples/local-cluster.sh kill $rel 1; echo still > $rel/mnt/2/up   # survive a member

Stop it with:

    examples/local-cluster.sh stop $rel
TXT
    fi
    ;;
stop)
    # every member with a data directory, founders and any that joined later
    for d in "$dir"/data/*/; do
        [ -d "$d" ] || continue
        k=$(basename "$d")
        stop_member "$k"
    done
    echo "stopped (data kept in $dir/data)"
    ;;
kill)
    k=${3:?usage: local-cluster.sh kill DIR K}
    pid=$(cat "$dir/data/$k/raftfs.lock" 2>/dev/null || true)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        mountpoint -q "$dir/mnt/$k" 2>/dev/null || break
        sleep 0.05
    done
    fusermount3 -u "$dir/mnt/$k" 2>/dev/null || true
    ;;
restart)
    k=${3:?usage: local-cluster.sh restart DIR K}
    start_member "$k" "$(members)"
    ;;
status)
    n=$(members)
    for k in $(seq 1 "$n"); do
        "$(bin)" status --endpoints "127.0.0.1:$((base + k))" --timeout 1 2>/dev/null ||
            echo "{\"id\": $k, \"down\": true}"
    done
    ;;
*)
    echo "usage: examples/local-cluster.sh start|stop|kill|restart|status [DIR [N|K]]" >&2
    exit 2
    ;;
esac
