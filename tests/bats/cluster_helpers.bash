# cluster_helpers.bash - a 3-member cluster on loopback per test, through
# examples/local-cluster.sh; stopped (every member, every mount) in
# teardown, also when the test failed.

cluster_setup() {
    TEST_TMP=$(mktemp -d /tmp/raftfs-bats.XXXXXX)
    CL=$TEST_TMP/cluster
    export RAFTFS_BASE_PORT=$(test_port_base)
    LC="$BATS_TEST_DIRNAME/../../examples/local-cluster.sh"
}

cluster_start() { # [N]
    "$LC" start "$CL" "${1:-3}" >/dev/null
}

cluster_teardown() {
    show_logs "$CL"/data/*/raftfs.log
    local p
    for p in "$CL"/data/*/raftfs.lock; do # a test stopped one (kill -STOP) and failed
        [ -s "$p" ] && kill -CONT "$(cat "$p")" 2>/dev/null || true
    done
    "$LC" stop "$CL" >/dev/null 2>&1 || true
    local k san=0
    sanitizer_findings "$CL"/data/*/raftfs.log || san=1
    for k in 1 2 3 4 5; do
        if mountpoint -q "$CL/mnt/$k" 2>/dev/null; then
            echo "# left mounted after stop: $CL/mnt/$k"
            return 1
        fi
    done
    rm -rf "$TEST_TMP"
    return $san
}

ep() { # K: member K's address
    echo "127.0.0.1:$((RAFTFS_BASE_PORT + $1))"
}

all_eps() {
    echo "$(ep 1),$(ep 2),$(ep 3)"
}

status_of() { # K
    "$RAFTFS_BIN" status --endpoints "$(ep "$1")" --timeout 1
}

leader() { # the leader's id as member 1..3 see it (first answer)
    local k s
    for k in 1 2 3; do
        s=$(status_of "$k" 2>/dev/null) || continue
        s=$(echo "$s" | sed -E 's/.*"leader": ([0-9]+).*/\1/')
        if [ -n "$s" ] && [ "$s" != 0 ]; then echo "$s"; return 0; fi
    done
    return 1
}

member_pid() { # K
    cat "$CL/data/$1/raftfs.lock"
}

exited() { # PID: gone or a zombie
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$st" ] || [ "$st" = Z ]
}

# Aborts the FUSE connection of each given mount (fusectl), so that a
# failed test cannot leave a hung mount behind. A live server whose
# connection is aborted exits.
abort_dead_connections() { # MOUNTPOINT...
    local m dev mounted=0
    [ -e /sys/fs/fuse/connections/ ] || return 0
    if ! mountpoint -q /sys/fs/fuse/connections; then
        mount -t fusectl none /sys/fs/fuse/connections || return 0
        mounted=1
    fi
    for m in "$@"; do
        dev=$(awk -v m="$m" '$5 == m {
                for (i = 7; i < NF; i++) if ($i == "-") break
                if ($(i + 1) ~ /^fuse/) { split($3, d, ":"); print d[1] * 1048576 + d[2] } }' \
            /proc/self/mountinfo | tail -1)
        [ -n "$dev" ] && echo 1 > "/sys/fs/fuse/connections/$dev/abort" 2>/dev/null
    done
    [ "$mounted" = 0 ] || umount /sys/fs/fuse/connections
    return 0
}
