#!/usr/bin/env bash
# demo.sh [DIR] - configuration reload on every member of a local cluster.
#
# Starts a 3-member cluster (examples/local-cluster.sh), writes /app/config,
# and runs one service.sh per member, reading its configuration from that
# member's mount. Each member's service is reloaded by `raftfs watch
# --exec` (members 1 and 2) or by reading the mount's .raftfs/events file
# (member 3). Then it changes the greeting through member 2's mount and
# waits until every service has reloaded with it. Exits 0 when all three
# did; stops everything it started in any case.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${1:-$root/.config-reload-demo}
lc=$root/examples/local-cluster.sh
base=${RAFTFS_BASE_PORT:-7400}
pids=()

cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "$lc" stop "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

"$lc" start "$dir" 3
bin=${RAFTFS_BIN:-$root/build/cli/raftfs}
ep() { echo "127.0.0.1:$((base + $1))"; }

mkdir -p "$dir/mnt/1/app/config"
echo hello >"$dir/mnt/1/app/config/greeting"
echo 8080 >"$dir/mnt/1/app/config/port"

for k in 1 2 3; do
    # Every member has the configuration once it has applied it.
    for _ in $(seq 1 50); do [ -s "$dir/mnt/$k/app/config/port" ] && break; sleep 0.1; done
    # SIGHUP back to its default first: a shell cannot trap a signal it
    # started with ignored, as under nohup.
    env --default-signal=HUP "$here/service.sh" "$dir/mnt/$k/app/config" "member-$k" \
        >"$dir/service-$k.log" 2>&1 &
    svc=$!
    pids+=("$svc")
    if [ "$k" -lt 3 ]; then
        # raftfs watch: once per burst of changes under the prefix.
        "$bin" watch /app/config --endpoints "$(ep "$k")" --debounce 100 \
            --exec "kill -HUP $svc" >"$dir/watch-$k.log" 2>&1 &
        pids+=($!)
    else
        # The events file of the mount: one line per change.
        (
            while read -r _rev _op path; do
                case $path in /app/config/*) kill -HUP "$svc" ;; esac
            done <"$dir/mnt/$k/.raftfs/events"
        ) &
        pids+=($!)
    fi
done
sleep 1 # the watchers are listening

echo "changing the greeting through member 2's mount"
echo bonjour >"$dir/mnt/2/app/config/greeting"

for _ in $(seq 1 100); do
    n=0
    for k in 1 2 3; do
        grep -q 'greeting=bonjour' "$dir/service-$k.log" && n=$((n + 1))
    done
    [ "$n" = 3 ] && break
    sleep 0.1
done
for k in 1 2 3; do cat "$dir/service-$k.log"; done
if [ "$n" = 3 ]; then
    echo "every member's service reloaded"
else
    echo "only $n of 3 services reloaded" >&2
    exit 1
fi
