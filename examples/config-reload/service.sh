#!/usr/bin/env bash
# service.sh CONFIG_DIR NAME - a stand-in for a real service: it reads its
# configuration (the files greeting and port) from CONFIG_DIR, a folder of
# a raftfs mount, logs what it serves with, and reads it again on SIGHUP.
# Nothing here knows about raftfs: it just reads files.
set -u
conf=$1
name=$2

load() {
    local greeting port
    # A key that is missing or being replaced keeps the last good value.
    greeting=$(cat "$conf/greeting" 2>/dev/null) || greeting=${GREETING:-}
    port=$(cat "$conf/port" 2>/dev/null) || port=${PORT:-}
    GREETING=$greeting
    PORT=$port
    echo "$(date +%T.%N | cut -c1-12) $name: serving greeting=$GREETING port=$PORT"
}

sleeper=""
trap load HUP
trap 'kill "$sleeper" 2>/dev/null; exit 0' TERM INT
load
while :; do
    if [ -z "$sleeper" ] || ! kill -0 "$sleeper" 2>/dev/null; then
        sleep 3600 &
        sleeper=$!
    fi
    wait "$sleeper" || true # a signal ends the wait: its trap ran; wait again
done
