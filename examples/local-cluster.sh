#!/usr/bin/env bash
# local-cluster.sh - the main job on an embedded default: installs what is
# missing, builds, and mounts a local raftfs (one member for now) at ./mnt
# with its data in ./.local-cluster/data.
#
#   examples/local-cluster.sh [start]   set up and mount (the default)
#   examples/local-cluster.sh status    is it mounted, what does it hold
#   examples/local-cluster.sh stop      unmount and stop the server
#
# Paths are relative to the repository root. RAFTFS_BIN overrides the binary.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mnt=$root/mnt
data=$root/.local-cluster/data
bin=${RAFTFS_BIN:-$root/build/cli/raftfs}
listen=127.0.0.1:7420 # the client port: raftfs put/get/ls/status use it by default

start() {
    "$root/scripts/deps.sh"
    if [ -z "${RAFTFS_BIN:-}" ]; then
        "$root/scripts/build.sh" normal
    fi
    if mountpoint -q "$mnt" 2>/dev/null; then
        echo "already mounted at $mnt (examples/local-cluster.sh stop to stop it)"
        exit 0
    fi
    if ! stat "$mnt" >/dev/null 2>&1; then
        fusermount3 -u "$mnt" 2>/dev/null || true # a dead mount left by a crash
    fi
    mkdir -p "$mnt" "$(dirname "$data")"
    "$bin" mount "$mnt" --data "$data" --listen "$listen"
    cat <<TXT

raftfs is mounted at ./mnt (data in ./.local-cluster/data). Try:

    echo hi > mnt/hello; cat mnt/hello; ls -la mnt
    mkdir -p mnt/app && echo "postgres://db" > mnt/app/db_url
    getfattr -d -m - mnt/app/db_url      # revisions of the key
    build/cli/raftfs get /app/db_url     # the same key over the client port ($listen)
    build/cli/raftfs put /app/port 5432; cat mnt/app/port

Stop it with:

    examples/local-cluster.sh stop       # or: fusermount3 -u mnt
TXT
}

stop() {
    if mountpoint -q "$mnt" 2>/dev/null; then
        local pid
        pid=$(cat "$data/raftfs.lock" 2>/dev/null || true)
        fusermount3 -u "$mnt"
        for _ in $(seq 1 100); do
            [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        echo "stopped (data kept in ./.local-cluster/data)"
    else
        echo "not mounted"
    fi
}

status() {
    if mountpoint -q "$mnt" 2>/dev/null; then
        echo "mounted at $mnt, server pid $(cat "$data/raftfs.lock" 2>/dev/null)"
        df -h "$mnt" | tail -1
    else
        echo "not mounted"
        exit 1
    fi
}

case ${1:-start} in
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: examples/local-cluster.sh [start|status|stop]" >&2; exit 2 ;;
esac
