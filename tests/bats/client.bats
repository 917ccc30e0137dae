#!/usr/bin/env bats
# The client protocol from the shell (raftfs put/get/del/mkdir/ls/status)
# against a mounted member, and the mount seeing those changes at once.

load helpers

setup() {
    common_setup
    PORT=$(test_port_base)
    export RAFTFS_ENDPOINTS=127.0.0.1:$PORT
    raftfs_start --listen "$RAFTFS_ENDPOINTS"
}

teardown() {
    common_teardown
}

@test "put, get, mkdir, ls, del and status over the client port" {
    "$RAFTFS_BIN" put /hello world
    run "$RAFTFS_BIN" get /hello
    assert_success
    assert_output "world"
    "$RAFTFS_BIN" mkdir /app
    printf 'postgres://db\n' | "$RAFTFS_BIN" put /app/db_url
    run "$RAFTFS_BIN" get /app/db_url
    assert_output "postgres://db"
    run "$RAFTFS_BIN" ls /
    assert_output "$(printf 'app/\nhello')"
    run "$RAFTFS_BIN" ls /app
    assert_output "db_url"
    run "$RAFTFS_BIN" status
    assert_success
    assert_output --partial '"role": "leader"'
    assert_output --partial '"revision": 3'
    "$RAFTFS_BIN" del /app/db_url
    "$RAFTFS_BIN" del /app
    run "$RAFTFS_BIN" ls /
    assert_output "hello"
}

@test "client errors: missing keys, non-empty directories, bad paths, no server" {
    run "$RAFTFS_BIN" get /nope
    [ "$status" -eq 1 ]
    assert_output --partial "No such file or directory"
    "$RAFTFS_BIN" mkdir /d
    "$RAFTFS_BIN" put /d/k v
    run "$RAFTFS_BIN" del /d
    [ "$status" -eq 1 ]
    assert_output --partial "Directory not empty"
    run "$RAFTFS_BIN" get /d
    [ "$status" -eq 1 ]
    assert_output --partial "Is a directory"
    run "$RAFTFS_BIN" put /x/y v
    [ "$status" -eq 1 ]
    run "$RAFTFS_BIN" put relative v
    [ "$status" -eq 2 ]
    run "$RAFTFS_BIN" get /k --endpoints 127.0.0.1:1 --timeout 0.5
    [ "$status" -eq 1 ]
    assert_output --partial "127.0.0.1:1"
    run "$RAFTFS_BIN" get --bogus /k
    [ "$status" -eq 2 ]
}

# size_soon FILE N: the kernel's cached size of FILE becomes N within 0.5 s
# (attributes are invalidated right after the apply, asynchronously).
size_soon() {
    for _ in $(seq 1 50); do
        [ "$(stat -c %s "$1")" -eq "$2" ] && return 0
        sleep 0.01
    done
    echo "size of $1 is $(stat -c %s "$1"), want $2"
    return 1
}

@test "the mount sees client writes at once: values, sizes, new and deleted names" {
    # Long kernel cache lifetimes: without invalidation, stale for 60 s.
    raftfs_stop
    raftfs_start --listen "$RAFTFS_ENDPOINTS" -o entry_timeout=60,attr_timeout=60
    for i in $(seq 1 30); do
        "$RAFTFS_BIN" put /k "value number $i"
        size_soon "$MNT/k" $((13 + ${#i}))
        [ "$(cat "$MNT/k")" = "value number $i" ] || { echo "stale at $i: $(cat "$MNT/k")"; false; }
    done
    run cat "$MNT/new"
    assert_failure
    "$RAFTFS_BIN" put /new fresh
    [ "$(cat "$MNT/new")" = fresh ]
    ls "$MNT" | grep -qx new
    stat "$MNT/new" >/dev/null # the kernel now caches the name and its attributes
    "$RAFTFS_BIN" del /new
    gone=0
    for _ in $(seq 1 50); do [ -e "$MNT/new" ] || { gone=1; break; }; sleep 0.01; done
    [ "$gone" -eq 1 ]
    run cat "$MNT/new"
    assert_failure
    refute grep -qx new < <(ls "$MNT")
    "$RAFTFS_BIN" mkdir /dir
    [ -d "$MNT/dir" ]
}

@test "client reads see mount writes" {
    echo "from the mount" > "$MNT/m"
    run "$RAFTFS_BIN" get /m
    assert_output "from the mount"
    run "$RAFTFS_BIN" get --serializable /m
    assert_output "from the mount"
}

@test "garbage on the client port closes that connection only" {
    "$RAFTFS_BIN" put /k v
    exec 7<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'GET / HTTP/1.0\r\n\r\n' >&7
    exec 7<&-
    exec 7<>"/dev/tcp/127.0.0.1/$PORT"
    head -c 5000 /dev/urandom >&7 || true
    exec 7<&-
    run "$RAFTFS_BIN" get /k
    assert_output "v"
    [ "$(cat "$MNT/k")" = v ]
    grep -q "undecodable\|Message too long\|before its Hello" "$DATA/raftfs.log"
}

@test "a busy client port is refused at mount time" {
    mkdir "$TEST_TMP/mnt2"
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt2" --data "$TEST_TMP/data2" --listen "$RAFTFS_ENDPOINTS" 3>&-
    assert_failure
    assert_output --partial "cannot listen"
    refute in_mountinfo "$TEST_TMP/mnt2"
}

@test "watch --json --values: one object per change, values base64 while current" {
    from=$(($("$RAFTFS_BIN" status | sed -nE 's/.*"revision": ([0-9]+).*/\1/p') + 1))
    "$RAFTFS_BIN" mkdir /j
    printf 'a\001b' | "$RAFTFS_BIN" put /j/v
    "$RAFTFS_BIN" mkdir /j/d
    run timeout 3 "$RAFTFS_BIN" watch /j --json --values --from-revision "$from"
    # timeout ends it (124); what it printed by then is the test
    [ "$status" -eq 124 ]
    assert_line --partial '"op": "mkdir", "path": "/j", "type": "dir", "mode": "0755"'
    assert_line --partial '"op": "put", "path": "/j/v", "type": "file", "mode": "0644", "size": 3, "value_base64": "YQFi"}'
    assert_line --partial '"op": "mkdir", "path": "/j/d"'
}
