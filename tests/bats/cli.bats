#!/usr/bin/env bats
# The raftfs command: start-up, refusal of bad data directories and
# mountpoints, clean stops, usage errors, the offline check.

load helpers
load cluster_helpers

setup() {
    common_setup
}

teardown() {
    # a test that started a cluster (CL set) stops it, every member
    if [ -n "${CL:-}" ]; then
        raftfs_stop
        cluster_teardown
    else
        common_teardown
    fi
}

@test "mount returns once ready, fusermount3 -u stops the server" {
    run raftfs_start
    assert_success
    assert_output --partial "mounted $DATA at $MNT"
    mountpoint -q "$MNT"
    pid=$(server_pid)
    [ -n "$pid" ]
    fusermount3 -u "$MNT"
    wait_gone "$pid" 10
    refute in_mountinfo "$MNT"
    grep -q "stopped" "$DATA/raftfs.log"
}

@test "SIGTERM unmounts and stops the server cleanly" {
    raftfs_start
    echo x > "$MNT/k"
    pid=$(server_pid)
    kill -TERM "$pid"
    wait_gone "$pid" 10
    refute in_mountinfo "$MNT"
    grep -q "unmounting" "$DATA/raftfs.log"
    raftfs_start
    [ "$(cat "$MNT/k")" = x ]
}

@test "kill -9 leaves no dead mount behind (auto_unmount)" {
    raftfs_start
    echo x > "$MNT/k"
    pid=$(server_pid)
    kill -9 "$pid"
    wait_gone "$pid" 10
    for i in $(seq 1 50); do in_mountinfo "$MNT" || break; sleep 0.1; done
    refute in_mountinfo "$MNT"
    # and it restarts on the same data with the same tree
    raftfs_start
    [ "$(cat "$MNT/k")" = x ]
}

# fusermount3 unmounts after a kill only if its open of the mountpoint fails
# with ENOTCONN; when it races the connection's abort it gets ECONNABORTED
# and leaves the dead mount (1 kill in 20 here). The guard then removes it:
# with fusermount3's helper killed, only the guard can.
@test "kill -9 with auto_unmount's helper gone: the guard removes the dead mount" {
    raftfs_start
    echo x > "$MNT/k"
    pid=$(server_pid)
    helper=$(pgrep -P "$pid" -x fusermount3)
    [ -n "$helper" ]
    kill -9 "$helper"
    wait_gone "$helper" 5
    kill -9 "$pid"
    wait_gone "$pid" 10
    for i in $(seq 1 50); do in_mountinfo "$MNT" || break; sleep 0.1; done
    refute in_mountinfo "$MNT"
    # the guard's line, in the log's form (no term: the guard does not follow it)
    grep -Eq '^ts=[0-9T:.-]+Z level=warn member=1 msg="guard: '"$MNT"': the server exited and auto_unmount left its dead mount behind; unmounted it"$' "$DATA/raftfs.log"
    raftfs_start
    [ "$(cat "$MNT/k")" = x ]
}

@test "--foreground serves until unmounted" {
    "$RAFTFS_BIN" mount "$MNT" --data "$DATA" --foreground 3>&- 2>"$TEST_TMP/fg.log" &
    pid=$!
    for i in $(seq 1 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
    mountpoint -q "$MNT"
    echo fg > "$MNT/k"
    [ "$(cat "$MNT/k")" = fg ]
    fusermount3 -u "$MNT"
    wait "$pid"
    grep -q "serving" "$TEST_TMP/fg.log"
}

@test "a foreign data directory is refused and left untouched" {
    mkdir -p "$DATA"
    echo precious > "$DATA/notes.txt"
    run raftfs_start
    assert_failure
    assert_output --partial "notes.txt"
    assert_output --partial "foreign"
    refute in_mountinfo "$MNT"
    [ "$(ls -A "$DATA")" = "notes.txt" ]
    [ "$(cat "$DATA/notes.txt")" = precious ]
}

@test "a corrupt data directory is refused, never reinitialised" {
    raftfs_start
    echo x > "$MNT/k"
    raftfs_stop
    before=$(md5sum < "$DATA/store/data.mdb")
    # damage both LMDB meta pages
    printf 'garbage%.0s' $(seq 1 1200) | dd of="$DATA/store/data.mdb" conv=notrunc bs=8192 count=1 2>/dev/null
    damaged=$(md5sum < "$DATA/store/data.mdb")
    run raftfs_start
    assert_failure
    assert_output --partial "refusing to start"
    refute in_mountinfo "$MNT"
    [ "$(md5sum < "$DATA/store/data.mdb")" = "$damaged" ]
    [ "$before" != "$damaged" ]
}

@test "a data directory in use by another server is refused" {
    raftfs_start
    mkdir "$TEST_TMP/mnt2"
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt2" --data "$DATA" 3>&-
    assert_failure
    assert_output --partial "in use"
    refute in_mountinfo "$TEST_TMP/mnt2"
}

@test "an occupied or missing mountpoint is refused" {
    raftfs_start
    run "$RAFTFS_BIN" mount "$MNT" --data "$TEST_TMP/other" 3>&-
    assert_failure
    assert_output --partial "already a mount point"
    run "$RAFTFS_BIN" mount "$TEST_TMP/nope" --data "$TEST_TMP/other" 3>&-
    assert_failure
    assert_output --partial "No such file or directory"
    touch "$TEST_TMP/file"
    run "$RAFTFS_BIN" mount "$TEST_TMP/file" --data "$TEST_TMP/other" 3>&-
    assert_failure
    assert_output --partial "not a directory"
}

@test "limits are fixed at creation and checked on later mounts" {
    raftfs_start --max-value-size 10
    run bash -c "printf '0123456789x' > '$MNT/k'"
    assert_failure
    assert_output --partial "File too large"
    printf '0123456789' > "$MNT/k"
    raftfs_stop
    run raftfs_start --max-value-size 20
    assert_failure
    assert_output --partial "fixed at creation"
    run raftfs_start
    assert_success
}

@test "usage errors exit 2 with a message" {
    run "$RAFTFS_BIN"
    [ "$status" -eq 2 ]
    run "$RAFTFS_BIN" frobnicate
    [ "$status" -eq 2 ]
    assert_output --partial "unknown command"
    run "$RAFTFS_BIN" mount "$MNT"
    [ "$status" -eq 2 ]
    assert_output --partial "missing --data"
    run "$RAFTFS_BIN" mount --data "$DATA"
    [ "$status" -eq 2 ]
    assert_output --partial "missing MOUNTPOINT"
    run "$RAFTFS_BIN" mount "$MNT" --data "$DATA" --max-value-size 1Q
    [ "$status" -eq 2 ]
    assert_output --partial "bad --max-value-size"
    run "$RAFTFS_BIN" mount "$MNT" --data "$DATA" --max-value-size 65M
    [ "$status" -eq 2 ]
    run "$RAFTFS_BIN" mount "$MNT" --data "$DATA" --bogus
    [ "$status" -eq 2 ]
    run "$RAFTFS_BIN" mount "$MNT" --data "$DATA" -o attr_timeout=abc
    [ "$status" -eq 1 ]
    assert_output --partial "bad mount option"
    refute in_mountinfo "$MNT"
    run "$RAFTFS_BIN" mount "$MNT" --data "$DATA" -o no_such_fuse_option
    [ "$status" -eq 1 ]
    refute in_mountinfo "$MNT"
    run "$RAFTFS_BIN" version
    assert_success
    assert_output --partial "raftfs"
    run "$RAFTFS_BIN" help mount
    assert_success
    assert_output --partial "--max-value-size"
}

@test "kill -9 during writes loses no acknowledged write" {
    raftfs_start
    mkdir "$MNT/acked"
    # /bin/echo, not the builtin: bash ignores the result of the close that
    # commits (README, "Writes commit at close").
    ( i=0; while /bin/echo "value $i" > "$MNT/acked/k$i" 2>/dev/null; do echo "$i" >> "$TEST_TMP/acked.log"; i=$((i + 1)); done ) &
    writer=$!
    sleep 1
    kill -9 "$(server_pid)"
    wait "$writer" || true
    for i in $(seq 1 50); do in_mountinfo "$MNT" || break; sleep 0.1; done
    n=$(wc -l < "$TEST_TMP/acked.log")
    [ "$n" -gt 10 ]
    raftfs_start
    while read -r i; do
        [ "$(cat "$MNT/acked/k$i")" = "value $i" ] || { echo "lost k$i"; false; }
    done < "$TEST_TMP/acked.log"
    echo "$n acknowledged writes survived"
}

@test "a full store refuses writes with ENOSPC, keeps old values, recovers when space is freed" {
    raftfs_start --db-size 2M
    head -c 100000 /dev/urandom > "$TEST_TMP/blob"
    n=0
    while [ $n -lt 100 ]; do
        run cp "$TEST_TMP/blob" "$MNT/b$n"
        [ "$status" -eq 0 ] || break
        n=$((n + 1))
    done
    assert_failure
    assert_output --partial "No space left on device"
    [ "$n" -gt 3 ]
    # every value committed before is intact
    for i in $(seq 0 $((n - 1))); do cmp "$TEST_TMP/blob" "$MNT/b$i"; done
    # /bin/echo reports a commit that found no room (the member may have
    # made some room by compacting its log: fill it again)
    for i in $(seq 1 30); do
        run bash -c "/bin/echo \"\$(head -c 120000 /dev/zero | tr '\\0' x)\" > '$MNT/e$i'"
        [ "$status" -eq 0 ] || break
    done
    assert_failure
    assert_output --partial "No space left on device"
    cmp "$TEST_TMP/blob" "$MNT/b0"
    # freeing space makes writes work again (once the log is compacted,
    # which the member does by itself when room is short)
    for i in $(seq 1 30); do rm -f "$MNT"/b* "$MNT"/e* 2>/dev/null && break; sleep 0.1; done
    for i in $(seq 1 30); do cp "$TEST_TMP/blob" "$MNT/again" 2>/dev/null && break; sleep 0.1; done
    cmp "$TEST_TMP/blob" "$MNT/again"
}

@test "the shell's echo fails visibly when its write is refused" {
    raftfs_start --max-value-size 64
    echo keep > "$MNT/k"
    run bash -c "echo '$(head -c 100 /dev/zero | tr '\0' x)' > '$MNT/k'"
    assert_failure
    assert_output --partial "File too large"
    [ "$(cat "$MNT/k")" = keep ]
}

@test "check: a stopped member's data directory checks ok and is left as it was" {
    raftfs_start
    mkdir -p "$MNT/a/b"
    echo one > "$MNT/a/b/k"
    echo two > "$MNT/x"
    mv "$MNT/x" "$MNT/a/y"
    run "$RAFTFS_BIN" check --data "$DATA"
    assert_failure
    assert_output --partial "in use by a running raftfs process"
    raftfs_stop
    before=$(md5sum "$DATA/store/data.mdb" "$DATA/store/lock.mdb")
    run "$RAFTFS_BIN" check --data "$DATA"
    assert_success
    assert_output --regexp "^raftfs check: $DATA: ok: 5 entries \(2 files, 3 dirs\), revision [0-9]+, applied [0-9]+, log 1\.\.[0-9]+ \(term [0-9]+\), digest [0-9a-f]{16}$"
    run "$RAFTFS_BIN" check --data "$DATA" --json
    assert_success
    assert_output --regexp '"ok": true, "entries": 5, .*"digest": "[0-9a-f]{16}"'
    [ "$(md5sum "$DATA/store/data.mdb" "$DATA/store/lock.mdb")" = "$before" ]
    # not a data directory: refused, and nothing is created
    run "$RAFTFS_BIN" check --data "$TEST_TMP/none"
    [ "$status" -eq 1 ]
    assert_output --partial "not a raftfs data directory"
    [ ! -e "$TEST_TMP/none" ]
    run "$RAFTFS_BIN" check --data "$MNT"
    [ "$status" -eq 1 ]
    [ -z "$(ls -A "$MNT")" ]
    run "$RAFTFS_BIN" check
    [ "$status" -eq 2 ]
    assert_output --partial "missing --data"
}

@test "check: a store left open by a killed server is noted, with what the next start does" {
    raftfs_start
    echo one > "$MNT/k"
    pid=$(server_pid)
    kill -9 "$pid"
    wait_gone "$pid" 10
    fusermount3 -u "$MNT" 2>/dev/null || true
    run "$RAFTFS_BIN" check --data "$DATA"
    assert_success
    assert_line --index 0 "raftfs check: $DATA: note: left open by this boot (the server was killed, not stopped): the next start takes the tree as it is"
    assert_line --index 1 --partial "ok: "
    run "$RAFTFS_BIN" check --data "$DATA" --json
    assert_success
    assert_output --regexp '"open_boot": "[0-9a-f-]+", "rebuild_at_start": false'
    # mounted and stopped again: closed cleanly, nothing to note
    raftfs_start
    [ "$(cat "$MNT/k")" = one ]
    raftfs_stop
    run "$RAFTFS_BIN" check --data "$DATA"
    assert_success
    refute_output --partial "note:"
}

# applied_of K: member K's applied index (from its status).
applied_of() {
    status_of "$1" 2>/dev/null | grep -o '"applied": [0-9]*' | grep -o '[0-9]*$'
}

@test "check: members of a cluster that applied the same writes print the same digest" {
    CL=$TEST_TMP/cluster
    LC="$BATS_TEST_DIRNAME/../../examples/local-cluster.sh"
    export RAFTFS_BASE_PORT=$(test_port_base)
    cluster_start
    mkdir -p "$CL/mnt/1/d/e"
    for i in 1 2 3 4 5; do echo "v$i" > "$CL/mnt/$(( (i % 3) + 1 ))/d/k$i"; done
    mv "$CL/mnt/2/d/k1" "$CL/mnt/2/d/e/k1"
    rm "$CL/mnt/3/d/k2"
    # converged: every write reads back everywhere, and the three have
    # applied the same index (the member directory included)
    for k in 1 2 3; do [ "$(cat "$CL/mnt/$k/d/e/k1")" = v1 ]; done
    for i in $(seq 1 50); do
        a1=$(applied_of 1); a2=$(applied_of 2); a3=$(applied_of 3)
        [ -n "$a1" ] && [ "$a1" = "$a2" ] && [ "$a2" = "$a3" ] && break
        sleep 0.1
    done
    [ "$a1" = "$a2" ] && [ "$a2" = "$a3" ]
    # the followers first: the leader alone can commit nothing more
    l=$(leader)
    for k in 1 2 3; do
        [ "$k" = "$l" ] && continue
        pid=$(member_pid "$k")
        fusermount3 -u "$CL/mnt/$k"
        wait_gone "$pid" 10
    done
    pid=$(member_pid "$l")
    fusermount3 -u "$CL/mnt/$l"
    wait_gone "$pid" 10
    for k in 1 2 3; do
        run "$RAFTFS_BIN" check --data "$CL/data/$k"
        assert_success
        echo "$output"
        eval "digest$k=${output##* }"
    done
    [ "$digest1" = "$digest2" ] && [ "$digest2" = "$digest3" ]
    # and a change on one member alone would show: another data directory
    # (a single member with other writes) has another digest
    raftfs_start
    echo other > "$MNT/k"
    raftfs_stop
    run "$RAFTFS_BIN" check --data "$DATA"
    assert_success
    [ "${output##* }" != "$digest1" ]
}
