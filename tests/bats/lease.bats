#!/usr/bin/env bats
# Leases on a real 3-member cluster: keys attached to a lease go on every
# member once the leader heard no keep-alive for its ttl, never before,
# also when the leader changes; keep-alives keep them; a revoke deletes
# them all at one revision.

load helpers
load cluster_helpers

setup() {
    cluster_setup
    BG_PIDS=()
}

teardown() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    cluster_teardown
}

now() { date +%s.%N; }

# Seconds from $1 to now.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

# Waits (up to $2 s) until FILE is gone; prints the seconds since $3.
gone_after() { # FILE TIMEOUT T0
    local i
    for i in $(seq 1 $(($2 * 20))); do
        if [ ! -e "$1" ]; then since "$3"; return 0; fi
        sleep 0.05
    done
    echo "never"
    return 1
}

@test "lease keys go on every member after the ttl, not before, also across a leader change" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    "$RAFTFS_BIN" mkdir /svc
    t0=$(now) # before the grant: the leader's clock starts after it
    id=$("$RAFTFS_BIN" lease grant 4s)
    "$RAFTFS_BIN" put /svc/a up --lease "$id"
    echo up >"$CL/mnt/2/svc/b"
    setfattr -n user.raftfs.lease -v "$id" "$CL/mnt/2/svc/b"
    "$RAFTFS_BIN" put /svc/keep stays
    [ "$(getfattr --only-values -n user.raftfs.lease "$CL/mnt/3/svc/b")" = "$id" ]
    run "$RAFTFS_BIN" lease ttl "$id"
    assert_output --partial "keys 2"
    # The leader dies a second in; another takes over with the clock.
    sleep 1
    l=$(leader)
    "$LC" kill "$CL" "$l"
    others=()
    for k in 1 2 3; do [ "$k" != "$l" ] && others+=("$k"); done
    for k in "${others[@]}"; do
        ta=$(gone_after "$CL/mnt/$k/svc/a" 30 "$t0")
        tb=$(gone_after "$CL/mnt/$k/svc/b" 30 "$t0")
        echo "# member $k: /svc/a gone after ${ta}s, /svc/b after ${tb}s (ttl 4s)" >&3
        awk -v a="$ta" -v b="$tb" 'BEGIN { exit !(a >= 4 && b >= 4) }'
        [ "$(cat "$CL/mnt/$k/svc/keep")" = stays ]
    done
    run "$RAFTFS_BIN" lease ttl "$id"
    assert_failure 1
    assert_output --partial "no such lease"
    # The old leader comes back and catches up: gone there too.
    "$LC" restart "$CL" "$l"
    for _ in $(seq 1 100); do [ -e "$CL/mnt/$l/svc/keep" ] && break; sleep 0.1; done
    gone_after "$CL/mnt/$l/svc/a" 10 "$t0" >/dev/null
    [ ! -e "$CL/mnt/$l/svc/b" ]
}

@test "lease keep-alive keeps keys past the ttl; a revoke deletes them at one revision" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    id=$("$RAFTFS_BIN" lease grant 1500ms)
    for k in a b c; do "$RAFTFS_BIN" put "/$k" "$k" --lease "$id"; done
    "$RAFTFS_BIN" lease keep-alive "$id" 2>"$TEST_TMP/ka.err" &
    KA=$!
    BG_PIDS+=("$KA")
    sleep 4 # well past the ttl
    for k in 1 2 3; do
        for f in a b c; do [ -e "$CL/mnt/$k/$f" ]; done
    done
    from=$(($(status_of 1 | sed -nE 's/.*"revision": ([0-9]+).*/\1/p') + 1))
    "$RAFTFS_BIN" watch / --from-revision "$from" >"$TEST_TMP/events" 2>/dev/null &
    BG_PIDS+=($!)
    "$RAFTFS_BIN" lease revoke "$id"
    for _ in $(seq 1 50); do [ "$(wc -l <"$TEST_TMP/events")" -ge 3 ] && break; sleep 0.1; done
    cat "$TEST_TMP/events"
    [ "$(grep -c ' delete /[abc]$' "$TEST_TMP/events")" = 3 ]
    [ "$(awk '{print $1}' "$TEST_TMP/events" | sort -u | wc -l)" = 1 ]
    for k in 1 2 3; do
        for _ in $(seq 1 50); do [ ! -e "$CL/mnt/$k/c" ] && break; sleep 0.1; done
        for f in a b c; do [ ! -e "$CL/mnt/$k/$f" ]; done
    done
    # The keep-alive finds its lease gone and says so.
    for _ in $(seq 1 50); do exited "$KA" && break; sleep 0.1; done
    run wait "$KA"
    [ "$status" -eq 1 ]
    grep -q "is gone" "$TEST_TMP/ka.err"
}

@test "lease errors: unknown leases, bad ids and ttls, directories" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    run "$RAFTFS_BIN" put /x y --lease 1234
    assert_failure 1
    assert_output --partial "no such lease"
    [ ! -e "$CL/mnt/1/x" ]
    echo v >"$CL/mnt/1/f"
    run setfattr -n user.raftfs.lease -v 1234 "$CL/mnt/1/f"
    assert_failure
    assert_output --partial "Required key not available"
    run setfattr -n user.raftfs.lease -v nothex "$CL/mnt/1/f"
    assert_failure
    assert_output --partial "Invalid argument"
    run setfattr -x user.raftfs.lease "$CL/mnt/1/f"
    assert_output --partial "No such attribute"
    id=$("$RAFTFS_BIN" lease grant 1h)
    mkdir "$CL/mnt/1/d"
    run setfattr -n user.raftfs.lease -v "$id" "$CL/mnt/1/d"
    assert_output --partial "Is a directory"
    for bad in 0 -1s 10x 2000000s ""; do
        run "$RAFTFS_BIN" lease grant "$bad"
        [ "$status" -eq 2 ] || { echo "# accepted ttl '$bad'"; false; }
    done
    run "$RAFTFS_BIN" lease grant 10s --id "$id"
    assert_failure 1
    assert_output --partial "that id is taken"
    for bad in 0 xyz 12345678901234567; do
        run "$RAFTFS_BIN" lease revoke "$bad"
        [ "$status" -eq 2 ] || { echo "# accepted id '$bad'"; false; }
    done
    run "$RAFTFS_BIN" lease list
    assert_success
    assert_output --partial "$id ttl 3600.000s"
    "$RAFTFS_BIN" lease revoke "$id"
    run "$RAFTFS_BIN" lease revoke "$id"
    assert_failure 1
    assert_output --partial "no such lease"
}
