#!/usr/bin/env bats
# raftfs txn: compares choose then or else, a branch is all or nothing,
# and the mount shows the whole txn or none of it.

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

revision() {
    "$RAFTFS_BIN" status | sed -nE 's/.*"revision": ([0-9]+).*/\1/p'
}

@test "txn: the then branch applies as one revision when the compares hold" {
    "$RAFTFS_BIN" mkdir /app
    "$RAFTFS_BIN" put /app/mode blue
    r0=$(revision)
    run "$RAFTFS_BIN" txn <<'EOF'
# switch to green if still blue and nobody holds the lock
if value /app/mode == blue
if missing /app/lock
then put /app/mode green
then put /app/note "switched at \"noon\"\n"
else put /app/conflict yes
EOF
    assert_success
    assert_output "$(printf 'SUCCESS\nrevision %d' $((r0 + 1)))"
    [ "$(cat "$MNT/app/mode")" = green ]
    [ "$(cat "$MNT/app/note")" = 'switched at "noon"' ]
    [ ! -e "$MNT/app/conflict" ]
    [ "$(revision)" = $((r0 + 1)) ]
}

@test "txn: a failing compare changes nothing and runs else" {
    "$RAFTFS_BIN" put /mode blue
    r0=$(revision)
    # No else: nothing at all happens, exit status 3.
    run "$RAFTFS_BIN" txn <<'EOF'
if value /mode == red
then put /mode green
then put /other x
EOF
    [ "$status" -eq 3 ]
    assert_output "$(printf 'FAILURE\nrevision %d' "$r0")"
    [ "$(cat "$MNT/mode")" = blue ]
    [ ! -e "$MNT/other" ]
    [ "$(revision)" = "$r0" ]
    # With else: only else.
    printf 'if version /mode > 5\nthen del /mode\nelse put /seen yes\n' >"$TEST_TMP/t"
    run "$RAFTFS_BIN" txn --file "$TEST_TMP/t"
    [ "$status" -eq 3 ]
    [ "$(cat "$MNT/seen")" = yes ]
    [ "$(cat "$MNT/mode")" = blue ]
}

@test "txn: a change that fails applies none of the branch, and says which" {
    "$RAFTFS_BIN" put /keep v
    r0=$(revision)
    run "$RAFTFS_BIN" txn <<'EOF'
then put /a 1
then del /keep
then mkdir /d
then put /no/such/dir x
EOF
    assert_failure 1
    assert_output --partial 'then #4 (put /no/such/dir): No such file or directory; nothing was applied'
    [ ! -e "$MNT/a" ]
    [ ! -e "$MNT/d" ]
    [ "$(cat "$MNT/keep")" = v ]
    [ "$(revision)" = "$r0" ]
}

@test "txn: compares on revisions make a compare-and-swap" {
    "$RAFTFS_BIN" put /counter 1
    mod=$(revision) # /counter was the last change
    printf 'if mod /counter == %d\nthen put /counter 2\n' "$mod" >"$TEST_TMP/cas"
    run "$RAFTFS_BIN" txn --file "$TEST_TMP/cas"
    assert_success
    # The same swap again: the revision moved, so it fails.
    run "$RAFTFS_BIN" txn --file "$TEST_TMP/cas"
    [ "$status" -eq 3 ]
    [ "$(cat "$MNT/counter")" = 2 ]
    run "$RAFTFS_BIN" txn <<'EOF'
if create /counter > 0
if version /counter == 2
then mv /counter /counter.old
EOF
    assert_success
    [ "$(cat "$MNT/counter.old")" = 2 ]
}

@test "txn: bad input is refused before anything is sent" {
    "$RAFTFS_BIN" put /x 1
    r0=$(revision)
    bad=(
        'then put /a'
        'then put relative v'
        'if value /x === 1\nthen put /a v'
        'if version /x == -1\nthen put /a v'
        'if version /x == 1x\nthen put /a v'
        'then put /a "unterminated'
        'then put /a "bad \q escape"'
        'then put /a v extra'
        'then put /a v\nif value /x == 1'
        'else put /a v\nthen put /b v'
        'maybe put /a v'
        'if exists /x'
        'then frobnicate /a'
    )
    for t in "${bad[@]}"; do
        run "$RAFTFS_BIN" txn < <(printf "$t\n")
        [ "$status" -eq 2 ] || { echo "# accepted: $t"; false; }
        [[ "$output" == *"raftfs txn: stdin:"* ]] || { echo "# unclear for $t: $output"; false; }
    done
    run "$RAFTFS_BIN" txn extra-argument </dev/null
    [ "$status" -eq 2 ]
    for t in 0 -1 nan 3601 5x ""; do
        run "$RAFTFS_BIN" txn --timeout "$t" <<<'then put /t v'
        [ "$status" -eq 2 ] || { echo "# accepted --timeout '$t'"; false; }
        [[ "$output" == *"bad --timeout"* ]]
    done
    run "$RAFTFS_BIN" txn --file /nonexistent
    [ "$status" -eq 1 ]
    assert_output --partial 'cannot read /nonexistent'
    [ "$(revision)" = "$r0" ]
    [ ! -e "$MNT/a" ]
}

@test "txn: the events file shows a large txn whole, at one revision" {
    exec 5<"$MNT/.raftfs/events"
    # 3001 changes: more lines (about 140 KiB) than one fill of the file.
    { echo 'then mkdir /many'
      for i in $(seq 1 3000); do echo "then put /many/k$i-with-a-longer-name v"; done; } \
        >"$TEST_TMP/t"
    run "$RAFTFS_BIN" txn --file "$TEST_TMP/t"
    assert_success
    "$RAFTFS_BIN" put /after x
    timeout 20 head -n 3002 <&5 >"$TEST_TMP/ev" || true
    exec 5<&-
    [ "$(wc -l <"$TEST_TMP/ev")" = 3002 ]
    [ "$(awk '{print $1}' "$TEST_TMP/ev" | sort -u | wc -l)" = 2 ]
    [ "$(grep -c ' put /many/k' "$TEST_TMP/ev")" = 3000 ]
    tail -n 1 "$TEST_TMP/ev" | grep -q ' put /after$'
    [ "$(ls "$MNT/many" | wc -l)" = 3000 ]
}

@test "txn: the README's example parses and runs, comments included" {
    "$RAFTFS_BIN" mkdir /app
    "$RAFTFS_BIN" put /app/mode blue
    "$RAFTFS_BIN" put /app/old x
    # The example as the README shows it.
    sed -n '/^raftfs txn \[--file FILE\] \[--endpoints/,/^EOF$/p' "$BATS_TEST_DIRNAME/../../README.md" |
        sed '1d;$d' >"$TEST_TMP/example"
    [ "$(wc -l <"$TEST_TMP/example")" = 5 ]
    run "$RAFTFS_BIN" txn --file "$TEST_TMP/example"
    assert_success
    [ "$(cat "$MNT/app/mode")" = green ]
    [ ! -e "$MNT/app/old" ]
    # A value that starts with # is quoted.
    printf 'then put /app/tag "#1" # the tag\n' | "$RAFTFS_BIN" txn
    [ "$(cat "$MNT/app/tag")" = '#1' ]
}
