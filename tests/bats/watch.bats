#!/usr/bin/env bats
# raftfs watch: the changes of a real 3-member cluster as they commit,
# resumed at another member when one dies without a missing or repeated
# event, and --exec once per burst, never two at once.

load helpers
load cluster_helpers

setup() {
    cluster_setup
    WATCH_PID=""
}

teardown() {
    if [ -n "$WATCH_PID" ]; then
        kill "$WATCH_PID" 2>/dev/null || true
        wait "$WATCH_PID" 2>/dev/null || true
    fi
    cluster_teardown
}

# The next revision of member K's store (where a watch started now begins).
next_rev() { # K
    echo $(($(status_of "$1" | sed -nE 's/.*"revision": ([0-9]+).*/\1/p') + 1))
}

# Waits (up to 10 s) until FILE has a line matching REGEX.
wait_line() { # FILE REGEX
    for _ in $(seq 1 100); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "# no line like '$2' in $1:"
    sed 's/^/#   /' "$1"
    return 1
}

@test "watch resumes across a leader kill without a missing or repeated event" {
    cluster_start
    l=$(leader)
    f=$(( (l % 3) + 1 ))
    o=$(( (f % 3) + 1 ))
    # The leader first: the stream breaks when it dies and goes on elsewhere.
    # From a revision: the watch may start after the first put below.
    from=$(next_rev "$l")
    "$RAFTFS_BIN" watch / --from-revision "$from" \
        --endpoints "$(ep "$l"),$(ep "$f"),$(ep "$o")" \
        >"$TEST_TMP/events" 2>"$TEST_TMP/watch.err" &
    WATCH_PID=$!
    "$RAFTFS_BIN" put /start x --endpoints "$(all_eps)"
    wait_line "$TEST_TMP/events" ' put /start$'
    : >"$TEST_TMP/acked"
    for i in $(seq 1 60); do
        [ "$i" = 20 ] && "$LC" kill "$CL" "$l"
        if "$RAFTFS_BIN" put "/k$i" "v$i" --endpoints "$(ep "$f"),$(ep "$o")" --timeout 10; then
            echo "/k$i" >>"$TEST_TMP/acked"
        fi
    done
    [ "$(wc -l <"$TEST_TMP/acked")" -ge 50 ]
    "$RAFTFS_BIN" put /end x --endpoints "$(ep "$f"),$(ep "$o")"
    wait_line "$TEST_TMP/events" ' put /end$'
    kill "$WATCH_PID"
    wait "$WATCH_PID" || true
    WATCH_PID=""
    cat "$TEST_TMP/watch.err"
    grep -q "going on from revision" "$TEST_TMP/watch.err" # it did fail over
    # Revisions strictly increase: nothing repeated, nothing out of order.
    awk 'NR > 1 && $1 <= prev { print "revision " $1 " after " prev; bad = 1 } { prev = $1 }
         END { exit bad }' "$TEST_TMP/events"
    # Every acknowledged put is there exactly once.
    while read -r p; do
        n=$(grep -c " put $p\$" "$TEST_TMP/events" || true)
        [ "$n" = 1 ] || { echo "$p: $n events"; false; }
    done <"$TEST_TMP/acked"
}

@test "watch goes on at another member when its member stops answering" {
    cluster_start
    l=$(leader)
    f=$(( (l % 3) + 1 ))
    o=$(( (f % 3) + 1 ))
    from=$(next_rev "$l")
    "$RAFTFS_BIN" watch / --from-revision "$from" --endpoints "$(ep "$f"),$(ep "$o")" \
        >"$TEST_TMP/events" 2>"$TEST_TMP/watch.err" &
    WATCH_PID=$!
    "$RAFTFS_BIN" put /a 1 --endpoints "$(ep "$l")"
    wait_line "$TEST_TMP/events" ' put /a$'
    # paused, its connections stay open: only the silence tells
    kill -STOP "$(member_pid "$f")"
    "$RAFTFS_BIN" put /b 2 --endpoints "$(ep "$l")"
    for _ in $(seq 1 150); do grep -q ' put /b$' "$TEST_TMP/events" && break; sleep 0.1; done
    kill -CONT "$(member_pid "$f")"
    cat "$TEST_TMP/watch.err"
    grep -q ' put /b$' "$TEST_TMP/events"
    grep -q "no word from the member" "$TEST_TMP/watch.err"
    "$RAFTFS_BIN" put /c 3 --endpoints "$(ep "$l")"
    wait_line "$TEST_TMP/events" ' put /c$'
    [ "$(grep -c ' put /[abc]$' "$TEST_TMP/events")" = 3 ]
}

@test "watch --exec runs once per burst, never two at once, with the paths in its environment" {
    cluster_start
    mkdir "$CL/mnt/1/cfg"
    out=$TEST_TMP/runs
    : >"$out"
    from=$(next_rev 1)
    "$RAFTFS_BIN" watch /cfg --from-revision "$from" --endpoints "$(all_eps)" --debounce 700 \
        --exec "echo \"start \$RAFTFS_EVENTS \$RAFTFS_REVISION\" >>'$out';
                printf '%s' \"\$RAFTFS_PATHS\" | sort >>'$out'; sleep 1.5; echo end >>'$out'" \
        2>"$TEST_TMP/watch.err" &
    WATCH_PID=$!
    for i in 1 2 3 4 5; do echo "v$i" >"$CL/mnt/2/cfg/k$i"; done
    # a new file is two events (made empty, then written at close)
    wait_line "$out" '^start [0-9]+ '
    # A burst while the command runs: it runs again after, not meanwhile.
    echo w >"$CL/mnt/3/cfg/k9"
    rm "$CL/mnt/3/cfg/k1"
    for _ in $(seq 1 100); do [ "$(grep -c '^end$' "$out")" = 2 ] && break; sleep 0.1; done
    cat "$out"
    [ "$(grep -c '^start' "$out")" = 2 ]
    [ "$(grep -c '^end$' "$out")" = 2 ]
    # never two at once: start, paths, end, start, paths, end
    [ "$(grep -E '^(start|end)' "$out" | sed 's/ .*//' | tr '\n' ' ')" = "start end start end " ]
    # the paths, each once: k1..k5, then k9 and k1 (deleted)
    [ "$(sed -n '2,6p' "$out" | tr '\n' ' ')" = "/cfg/k1 /cfg/k2 /cfg/k3 /cfg/k4 /cfg/k5 " ]
    [ "$(sed -n '9,10p' "$out" | tr '\n' ' ')" = "/cfg/k1 /cfg/k9 " ]
    # a change outside the prefix runs nothing
    echo x >"$CL/mnt/1/other"
    sleep 1.5
    [ "$(grep -c '^start' "$out")" = 2 ]
}

@test "watch refuses a compacted start, bad prefixes and options" {
    RAFTFS_MOUNT_OPTS="--history-revisions 5" cluster_start
    for i in $(seq 1 10); do "$RAFTFS_BIN" put "/k$i" v --endpoints "$(all_eps)"; done
    run "$RAFTFS_BIN" watch / --from-revision 1 --endpoints "$(all_eps)"
    [ "$status" = 3 ]
    assert_output --partial "is compacted"
    assert_output --partial "list again"
    run "$RAFTFS_BIN" watch relative/path
    [ "$status" = 2 ]
    run "$RAFTFS_BIN" watch /a/ --endpoints "$(all_eps)"
    [ "$status" = 2 ]
    run "$RAFTFS_BIN" watch / --debounce -1
    [ "$status" = 2 ]
    run "$RAFTFS_BIN" watch / --exec ""
    [ "$status" = 2 ]
}

@test ".raftfs/events: bash read, two readers at once, and poll/select" {
    cluster_start
    ev=$CL/mnt/2/.raftfs/events
    [ "$(stat -c %s "$ev")" = 0 ]
    # two readers of one mount, and one of another
    timeout 20 bash -c "while read -r rev op path; do echo \"\$rev \$op \$path\"; [ \"\$path\" = /stop ] && break; done <'$ev'" >"$TEST_TMP/r1" &
    r1=$!
    timeout 20 bash -c "while read -r rev op path; do echo \"\$rev \$op \$path\"; [ \"\$path\" = /stop ] && break; done <'$ev'" >"$TEST_TMP/r2" &
    r2=$!
    timeout 20 cat "$CL/mnt/3/.raftfs/events" >"$TEST_TMP/r3" &
    r3=$!
    # they start at the revision when they open: wait until all three have
    for i in $(seq 1 100); do
        [ "$(find /proc/[0-9]*/fd -lname '*/.raftfs/events' 2>/dev/null | wc -l)" -ge 3 ] && break
        sleep 0.1
    done
    echo a >"$CL/mnt/1/x"
    mkdir "$CL/mnt/1/d"
    mv "$CL/mnt/1/x" "$CL/mnt/1/d/y"
    "$RAFTFS_BIN" put "/with space" v --endpoints "$(all_eps)"
    rm "$CL/mnt/3/d/y"
    echo stop >"$CL/mnt/1/stop"
    wait "$r1"
    wait "$r2"
    kill "$r3" 2>/dev/null || true
    wait "$r3" || true
    cat "$TEST_TMP/r1"
    cmp "$TEST_TMP/r1" "$TEST_TMP/r2"
    [ "$(cut -d' ' -f2- "$TEST_TMP/r1" | tr '\n' ',')" = \
      "put /x,put /x,mkdir /d,rename /x /d/y,put /with space,delete /d/y,put /stop," ]
    # revisions strictly increase, and every member numbers them alike
    awk 'NR > 1 && $1 <= prev { bad = 1 } { prev = $1 } END { exit bad }' "$TEST_TMP/r1"
    head -n 6 "$TEST_TMP/r3" | diff - <(head -n 6 "$TEST_TMP/r1")
    # poll and select wait for a change, then report it readable
    run timeout 40 "$FSTEST_BIN" poll-events "$CL/mnt/1/.raftfs/events" "$CL/mnt/2/trigger"
    echo "$output"
    assert_success
    # read-only
    run bash -c "echo x >'$ev'"
    assert_failure
}

@test ".raftfs/events: a reader that falls behind the history gets an error line and EOF" {
    RAFTFS_MOUNT_OPTS="--history-revisions 5" cluster_start
    exec 5<"$CL/mnt/1/.raftfs/events"
    for i in $(seq 1 12); do echo "$i" >"$CL/mnt/1/k$i"; done
    run timeout 10 cat <&5
    exec 5<&-
    echo "$output"
    assert_success # end of file after the error line
    assert_output --regexp '^ERROR compacted [0-9]+: open the file again and re-read the tree$'
}

@test ".raftfs/events: at most 16 open on a mount (each may hold a server thread)" {
    cluster_start
    ev=$CL/mnt/1/.raftfs/events
    # (in a shell of its own: bats keeps some descriptors of its own)
    run bash -c 'for fd in $(seq 10 25); do eval "exec $fd<\"\$1\""; done
                 ls -l /proc/$$/fd | grep -c events; timeout 5 cat "$1"' _ "$ev"
    assert_failure
    assert_line 16
    assert_output --partial "Too many open files"
    # released, they can be opened again
    run bash -c 'exec 9<"$1" && echo opened' _ "$ev"
    assert_output opened
}

@test "examples/config-reload: a change on one member reloads every member's service" {
    # The demo starts and stops its own cluster (in CL, so that the
    # teardown finds it if the demo fails half-way).
    run "$BATS_TEST_DIRNAME/../../examples/config-reload/demo.sh" "$CL"
    echo "$output"
    assert_success
    assert_output --partial "every member's service reloaded"
    for k in 1 2 3; do
        grep -q "member-$k: serving greeting=bonjour port=8080" "$CL/service-$k.log"
    done
    [ -z "$(pgrep -f "service.sh $CL" || true)" ]
}
