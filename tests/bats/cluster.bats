#!/usr/bin/env bats
# Real 3-member clusters on loopback: replication through the mounts,
# writes on followers, leader failure, catching up (by log and by
# snapshot), losing the majority, hostile frames, refused data dirs.

load helpers
load cluster_helpers

setup() {
    cluster_setup
}

teardown() {
    cluster_teardown
}

@test "a write on any member reads back on every other member right after close" {
    cluster_start
    for i in $(seq 1 30); do
        from=$(( (i % 3) + 1 ))
        echo "value $i" > "$CL/mnt/$from/k"
        for k in 1 2 3; do
            [ "$(cat "$CL/mnt/$k/k")" = "value $i" ] || { echo "member $k stale at $i"; false; }
        done
    done
    mkdir -p "$CL/mnt/2/a/b"
    echo deep > "$CL/mnt/3/a/b/c"
    mv "$CL/mnt/1/a" "$CL/mnt/1/z"
    [ "$(cat "$CL/mnt/2/z/b/c")" = deep ]
    [ ! -e "$CL/mnt/3/a" ]
}

@test "writes on followers work, and the client port of any member serves" {
    cluster_start
    l=$(leader)
    for k in 1 2 3; do
        [ "$k" = "$l" ] && continue
        echo "from follower $k" > "$CL/mnt/$k/f$k"
        run "$RAFTFS_BIN" get "/f$k" --endpoints "$(ep "$l")"
        assert_output "from follower $k"
        "$RAFTFS_BIN" put "/p$k" "via $k" --endpoints "$(ep "$k")"
        [ "$(cat "$CL/mnt/$l/p$k")" = "via $k" ]
    done
}

@test "kill -9 of the leader: writes resume on the other two within 2 s" {
    cluster_start
    echo before > "$CL/mnt/1/k"
    l=$(leader)
    o=$(( (l % 3) + 1 ))
    kill -9 "$(member_pid "$l")"
    start=$(date +%s%N)
    until echo after > "$CL/mnt/$o/k" 2>/dev/null; do sleep 0.02; done
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "first write after the kill: $ms ms"
    [ "$ms" -lt 2000 ]
    p=$(( (o % 3) + 1 )); [ "$p" = "$l" ] && p=$(( (p % 3) + 1 ))
    [ "$(cat "$CL/mnt/$p/k")" = after ]
}

@test "a restarted member catches up, by log and after compaction by snapshot" {
    RAFTFS_MOUNT_OPTS="--snapshot-entries 40" cluster_start
    echo 1 > "$CL/mnt/1/early"
    "$LC" kill "$CL" 3
    for i in $(seq 1 8); do echo "$i" > "$CL/mnt/1/log$i"; done
    RAFTFS_MOUNT_OPTS="--snapshot-entries 40" "$LC" restart "$CL" 3
    [ "$(cat "$CL/mnt/3/log8")" = 8 ]
    ! grep -q "installed a snapshot" "$CL/data/3/raftfs.log"
    # Far enough behind that the leader compacted past it.
    "$LC" kill "$CL" 3
    for i in $(seq 1 40); do echo "$i" > "$CL/mnt/1/snap$i"; done
    RAFTFS_MOUNT_OPTS="--snapshot-entries 40" "$LC" restart "$CL" 3
    [ "$(cat "$CL/mnt/3/snap40")" = 40 ]
    [ "$(cat "$CL/mnt/3/early")" = 1 ]
    [ "$(ls "$CL/mnt/3" | wc -l)" -eq $((1 + 8 + 40)) ]
    grep -q "installed a snapshot" "$CL/data/3/raftfs.log"
}

@test "without a majority writes and linearizable reads fail in time; serializable reads answer" {
    RAFTFS_MOUNT_OPTS="--timeout 1.5" cluster_start
    echo kept > "$CL/mnt/1/k"
    "$LC" kill "$CL" 2
    "$LC" kill "$CL" 3
    start=$(date +%s%N)
    run bash -c "/bin/echo lost > '$CL/mnt/1/k2'"
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    assert_failure
    assert_output --partial "Connection timed out"
    [ "$ms" -lt 5000 ]
    run cat "$CL/mnt/1/k"
    assert_failure
    assert_output --partial "Connection timed out"
    run "$RAFTFS_BIN" get /k --serializable --endpoints "$(ep 1)"
    assert_success
    assert_output kept
    run "$RAFTFS_BIN" get /k --endpoints "$(ep 1)" --timeout 3
    assert_failure
    # One member back: a majority again.
    RAFTFS_MOUNT_OPTS="--timeout 1.5" "$LC" restart "$CL" 2
    for i in $(seq 1 100); do echo again > "$CL/mnt/1/k3" 2>/dev/null && break; sleep 0.05; done
    [ "$(cat "$CL/mnt/2/k3")" = again ]
    [ "$(cat "$CL/mnt/1/k")" = kept ]
}

@test "garbage, oversized, truncated and wrong-cluster frames leave the cluster healthy" {
    cluster_start
    echo v > "$CL/mnt/1/k"
    port=$((RAFTFS_BASE_PORT + 2))
    exec 7<>"/dev/tcp/127.0.0.1/$port"; printf 'GET / HTTP/1.0\r\n\r\n' >&7; exec 7<&-
    exec 7<>"/dev/tcp/127.0.0.1/$port"; printf '\x7f\xff\xff\xff' >&7; exec 7<&-
    exec 7<>"/dev/tcp/127.0.0.1/$port"; printf '\x00\x00\x01\x00abc' >&7; exec 7<&-
    exec 7<>"/dev/tcp/127.0.0.1/$port"; head -c 3000 /dev/urandom >&7 || true; exec 7<&-
    # A member of another cluster (another token) is refused.
    mkdir -p "$TEST_TMP/mx"
    "$RAFTFS_BIN" mount "$TEST_TMP/mx" --data "$TEST_TMP/dx" --id 1 \
        --peers "1=127.0.0.1:$((RAFTFS_BASE_PORT + 9)),2=$(ep 2)" --cluster-token other 3>&-
    sleep 1
    fusermount3 -u "$TEST_TMP/mx"
    grep -q "refused" "$CL/data/2/raftfs.log"
    echo w > "$CL/mnt/2/k"
    for k in 1 2 3; do [ "$(cat "$CL/mnt/$k/k")" = w ]; done
    status_of 2 | grep -q '"leader": [1-3]'
}

@test "a data directory cannot serve another member or cluster, nor two at once" {
    cluster_start
    mkdir -p "$TEST_TMP/m"
    run "$RAFTFS_BIN" mount "$TEST_TMP/m" --data "$CL/data/1" --id 1 --peers "$(cat /dev/null)1=$(ep 1)"
    assert_failure
    "$LC" kill "$CL" 1
    run "$RAFTFS_BIN" mount "$TEST_TMP/m" --data "$CL/data/1" --id 2 \
        --peers "1=$(ep 1),2=$(ep 2),3=$(ep 3)" --cluster-token local-cluster
    assert_failure
    assert_output --partial "belongs to member 1"
    run "$RAFTFS_BIN" mount "$TEST_TMP/m" --data "$CL/data/1" --id 1 --peers "1=$(ep 1)"
    assert_failure
    assert_output --partial "cluster"
}
