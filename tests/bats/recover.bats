#!/usr/bin/env bats
# raftfs recover --force-new-cluster on a real cluster on loopback: the
# lone survivor of a lost majority serves its data again, takes writes and
# lets new members join.

load helpers
load cluster_helpers

setup() {
    cluster_setup
    M4_MNT=""
}

teardown() {
    local san=0 pid
    if [ -n "$M4_MNT" ]; then
        fusermount3 -u "$M4_MNT" 2>/dev/null || true
        pid=$(cat "$M4_DATA/raftfs.lock" 2>/dev/null || true)
        [ -z "$pid" ] || wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
        sanitizer_findings "$M4_DATA/raftfs.log" || san=1
    fi
    cluster_teardown || return 1
    return $san
}

stop_member() { # DIR K: unmount member K of cluster DIR, wait for its exit
    local pid
    pid=$(cat "$1/data/$2/raftfs.lock")
    fusermount3 -u "$1/mnt/$2"
    wait_gone "$pid" 10
}

@test "recover --force-new-cluster: the survivor of a lost majority serves its data and takes writes" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    "$RAFTFS_BIN" mkdir /app
    for i in 1 2 3; do "$RAFTFS_BIN" put "/app/k$i" "v$i"; done
    sleep 0.5
    "$LC" kill "$CL" 2
    "$LC" kill "$CL" 3
    rm -rf "$CL/data/2" "$CL/data/3"
    # Alone, member 1 cannot write.
    run "$RAFTFS_BIN" put /lost x --endpoints "$(ep 1)" --timeout 2
    assert_failure
    # Not while it runs.
    run "$RAFTFS_BIN" recover --force-new-cluster --data "$CL/data/1"
    assert_failure 1
    assert_output --partial "in use"
    stop_member "$CL" 1
    run "$RAFTFS_BIN" recover --data "$CL/data/1"
    assert_failure 2
    run "$RAFTFS_BIN" recover --force-new-cluster --data "$CL/data/1"
    assert_success
    assert_output --partial "WARNING"
    assert_output --partial "LOST"
    "$RAFTFS_BIN" check --data "$CL/data/1" >/dev/null
    "$LC" restart "$CL" 1
    # It serves what it had, and takes writes, as the only voter.
    [ "$("$RAFTFS_BIN" get /app/k3 --endpoints "$(ep 1)")" = v3 ]
    [ "$(cat "$CL/mnt/1/app/k1")" = v1 ]
    echo again >"$CL/mnt/1/app/k4"
    "$RAFTFS_BIN" put /app/k5 v5 --endpoints "$(ep 1)"
    [ "$("$RAFTFS_BIN" get /app/k4 --endpoints "$(ep 1)")" = again ]
    status_of 1 | grep -q '"leader": 1'
    # A new member joins it and gets everything.
    M4_MNT=$CL/mnt/4
    M4_DATA=$CL/data/4
    mkdir -p "$M4_MNT"
    "$RAFTFS_BIN" mount "$M4_MNT" --data "$M4_DATA" --id 4 --listen "$(ep 4)" --join "$(ep 1)" \
        3>&- </dev/null
    for _ in $(seq 1 100); do
        [ "$(cat "$M4_MNT/app/k5" 2>/dev/null)" = v5 ] && break
        sleep 0.1
    done
    [ "$(cat "$M4_MNT/app/k5")" = v5 ]
    [ "$("$RAFTFS_BIN" get /app/k2 --endpoints "$(ep 4)")" = v2 ]
}
