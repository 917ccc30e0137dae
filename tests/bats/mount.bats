#!/usr/bin/env bats
# Shell tools on a real mount: what a user does with keys as files.

load helpers

setup() {
    common_setup
    raftfs_start
}

teardown() {
    common_teardown
}

@test "echo writes a key and cat reads it back" {
    echo hi > "$MNT/hello"
    run cat "$MNT/hello"
    assert_success
    assert_output "hi"
}

@test "overwriting with a shorter value leaves no tail" {
    echo "a rather long first value" > "$MNT/k"
    echo short > "$MNT/k"
    run cat "$MNT/k"
    assert_output "short"
    [ "$(stat -c %s "$MNT/k")" -eq 6 ]
}

@test "echo >> appends" {
    echo one > "$MNT/log"
    echo two >> "$MNT/log"
    echo three >> "$MNT/log"
    run cat "$MNT/log"
    assert_output "$(printf 'one\ntwo\nthree')"
    # >> on a missing file creates it
    echo first >> "$MNT/new"
    run cat "$MNT/new"
    assert_output "first"
}

@test "mkdir -p makes nested directories" {
    mkdir -p "$MNT/app/db/replica"
    [ -d "$MNT/app/db/replica" ]
    echo x > "$MNT/app/db/replica/url"
    run cat "$MNT/app/db/replica/url"
    assert_output "x"
    run mkdir "$MNT/app"
    assert_failure
    assert_output --partial "File exists"
}

@test "ls -la lists entries with types, sizes and modes" {
    mkdir "$MNT/dir"
    printf 'abc' > "$MNT/file"
    chmod 600 "$MNT/file"
    run ls -la "$MNT"
    assert_success
    assert_line --regexp '^d.* \.$'
    assert_line --regexp '^d.* \.\.$'
    assert_line --regexp '^drwxr-xr-x .* dir$'
    assert_line --regexp '^-rw------- +1 root root +3 .* file$'
}

@test "mv renames files and whole directories" {
    mkdir -p "$MNT/a/sub"
    echo deep > "$MNT/a/sub/k"
    echo f > "$MNT/f"
    mv "$MNT/f" "$MNT/g"
    [ ! -e "$MNT/f" ]
    run cat "$MNT/g"
    assert_output "f"
    mv "$MNT/a" "$MNT/b"
    [ ! -e "$MNT/a" ]
    run cat "$MNT/b/sub/k"
    assert_output "deep"
    mkdir "$MNT/c"
    mv "$MNT/g" "$MNT/b/sub" "$MNT/c/"
    run ls "$MNT/c"
    assert_output "$(printf 'g\nsub')"
}

@test "write to a temp name then mv replaces the key atomically" {
    echo old > "$MNT/k"
    echo new > "$MNT/k.tmp" && mv "$MNT/k.tmp" "$MNT/k"
    run cat "$MNT/k"
    assert_output "new"
    [ ! -e "$MNT/k.tmp" ]
    run ls "$MNT"
    assert_output "k"
}

@test "cp -r in and out round-trips a tree (diff -r)" {
    src=$TEST_TMP/src
    mkdir -p "$src/etc/app" "$src/empty"
    echo "port = 80" > "$src/etc/app/conf"
    head -c 200000 /dev/urandom > "$src/etc/app/blob"
    printf '' > "$src/etc/zero"
    for i in $(seq 1 50); do echo "value $i" > "$src/etc/k$i"; done
    cp -r "$src" "$MNT/tree"
    run diff -r "$src" "$MNT/tree"
    assert_success
    cp -r "$MNT/tree" "$TEST_TMP/back"
    run diff -r "$src" "$TEST_TMP/back"
    assert_success
}

@test "rm -r removes a tree" {
    mkdir -p "$MNT/t/a/b"
    for i in 1 2 3; do echo $i > "$MNT/t/a/b/$i"; echo $i > "$MNT/t/$i"; done
    rm -r "$MNT/t"
    [ ! -e "$MNT/t" ]
    run ls -A "$MNT"
    assert_output ""
}

@test "rmdir of a non-empty directory fails and keeps it" {
    mkdir "$MNT/d"
    echo x > "$MNT/d/k"
    run rmdir "$MNT/d"
    assert_failure
    assert_output --partial "Directory not empty"
    run cat "$MNT/d/k"
    assert_output "x"
    rm "$MNT/d/k"
    rmdir "$MNT/d"
    [ ! -e "$MNT/d" ]
}

@test "chmod and chown are persisted across a remount" {
    echo x > "$MNT/k"
    mkdir "$MNT/d"
    chmod 640 "$MNT/k"
    chmod 700 "$MNT/d"
    chown 1234:5678 "$MNT/k"
    [ "$(stat -c '%a %u %g' "$MNT/k")" = "640 1234 5678" ]
    raftfs_stop
    raftfs_start
    [ "$(stat -c '%a %u %g' "$MNT/k")" = "640 1234 5678" ]
    [ "$(stat -c '%a' "$MNT/d")" = "700" ]
}

@test "truncate grows with zeros and shrinks" {
    printf 'abcdef' > "$MNT/k"
    truncate -s 3 "$MNT/k"
    run cat "$MNT/k"
    assert_output "abc"
    truncate -s 6 "$MNT/k"
    [ "$(stat -c %s "$MNT/k")" -eq 6 ]
    [ "$(od -An -c "$MNT/k" | tr -s ' ')" = " a b c \0 \0 \0" ]
    truncate -s 0 "$MNT/k"
    [ "$(stat -c %s "$MNT/k")" -eq 0 ]
}

@test "stat reports size and a modification time that moves with writes" {
    printf '12345' > "$MNT/k"
    [ "$(stat -c %s "$MNT/k")" -eq 5 ]
    m1=$(stat -c %Y.%y "$MNT/k")
    touch -d '2001-02-03 04:05:06' "$MNT/k"
    [ "$(stat -c %Y "$MNT/k")" -eq "$(date -d '2001-02-03 04:05:06' +%s)" ]
    printf '123' > "$MNT/k"
    [ "$(stat -c %s "$MNT/k")" -eq 3 ]
    now=$(date +%s)
    mt=$(stat -c %Y "$MNT/k")
    [ $((now - mt)) -le 5 ]
    [ "$m1" != "$(stat -c %Y.%y "$MNT/k")" ]
}

@test "getfattr shows revisions that increase with each write" {
    echo 1 > "$MNT/k"
    r1=$(getfattr --only-values -n user.raftfs.revision "$MNT/k")
    c1=$(getfattr --only-values -n user.raftfs.create_revision "$MNT/k")
    v1=$(getfattr --only-values -n user.raftfs.version "$MNT/k")
    echo 2 > "$MNT/k"
    r2=$(getfattr --only-values -n user.raftfs.revision "$MNT/k")
    echo 3 >> "$MNT/k"
    r3=$(getfattr --only-values -n user.raftfs.revision "$MNT/k")
    c3=$(getfattr --only-values -n user.raftfs.create_revision "$MNT/k")
    v3=$(getfattr --only-values -n user.raftfs.version "$MNT/k")
    [ "$r2" -gt "$r1" ]
    [ "$r3" -gt "$r2" ]
    [ "$c3" -eq "$c1" ]
    [ "$v3" -eq $((v1 + 2)) ]
    run getfattr -d -m - "$MNT/k"
    assert_line --partial 'user.raftfs.revision='
    assert_line --partial 'user.raftfs.create_revision='
    assert_line --partial 'user.raftfs.version='
}

@test "a value over the size limit is refused and the old one kept" {
    echo keep > "$MNT/k"
    run bash -c "head -c 1048577 /dev/zero > '$MNT/k'"
    assert_failure
    assert_output --partial "File too large"
    # The failed write never reached the store; the open(O_TRUNC) either.
    run cat "$MNT/k"
    assert_output "keep"
    # Exactly at the limit is fine.
    head -c 1048576 /dev/zero > "$MNT/big"
    [ "$(stat -c %s "$MNT/big")" -eq 1048576 ]
}

@test "a name over 255 bytes is refused" {
    name=$(printf 'n%.0s' $(seq 1 256))
    run bash -c "echo x > '$MNT/$name'"
    assert_failure
    assert_output --partial "File name too long"
    run mkdir "$MNT/$name"
    assert_failure
    # longer names still reach the server (the kernel allows 1024): refused too
    long=$(printf 'n%.0s' $(seq 1 1000))
    run touch "$MNT/$long"
    assert_failure
    assert_output --partial "File name too long"
    ok=$(printf 'n%.0s' $(seq 1 255))
    echo x > "$MNT/$ok"
    [ -f "$MNT/$ok" ]
}

@test "sed -i edits a key in place" {
    printf 'host=a\nport=1\n' > "$MNT/conf"
    sed -i 's/port=1/port=2/' "$MNT/conf"
    run cat "$MNT/conf"
    assert_output "$(printf 'host=a\nport=2')"
    run ls -A "$MNT"
    assert_output "conf"
}

@test "the tree persists across unmount and remount" {
    mkdir -p "$MNT/a/b"
    echo v1 > "$MNT/a/b/k"
    echo top > "$MNT/top"
    r=$(getfattr --only-values -n user.raftfs.revision "$MNT/a/b/k")
    ino=$(stat -c %i "$MNT/a/b/k")
    raftfs_stop
    refute in_mountinfo "$MNT"
    raftfs_start
    run cat "$MNT/a/b/k"
    assert_output "v1"
    run cat "$MNT/top"
    assert_output "top"
    [ "$(getfattr --only-values -n user.raftfs.revision "$MNT/a/b/k")" = "$r" ]
    [ "$(stat -c %i "$MNT/a/b/k")" = "$ino" ]
}

@test "8 concurrent writers to distinct keys all land" {
    mkdir "$MNT/par"
    for w in 1 2 3 4 5 6 7 8; do
        ( for i in $(seq 1 40); do echo "w$w-$i" > "$MNT/par/w$w-$i"; done ) &
    done
    wait
    [ "$(ls "$MNT/par" | wc -l)" -eq 320 ]
    for w in 1 2 3 4 5 6 7 8; do
        for i in 1 20 40; do
            [ "$(cat "$MNT/par/w$w-$i")" = "w$w-$i" ]
        done
    done
}

@test "concurrent appenders never lose each other's lines" {
    : > "$MNT/log"
    for w in 1 2 3 4; do
        ( for i in $(seq 1 50); do echo "w$w line $i" >> "$MNT/log"; done ) &
    done
    wait
    [ "$(wc -l < "$MNT/log")" -eq 200 ]
    [ "$(sort -u "$MNT/log" | wc -l)" -eq 200 ]
    for w in 1 2 3 4; do
        [ "$(grep -c "^w$w line" "$MNT/log")" -eq 50 ]
    done
}

@test "a reader never sees an empty or partial value while a writer rewrites it" {
    "$FSTEST_BIN" writer "$MNT/k" 1
    # shell writer: echo > k in a loop, values in the reader's format
    (
        for i in $(seq 1 200); do
            pad=$(printf 'x%.0s' $(seq 1 $((i % 50))))
            [ $((i % 50)) -eq 0 ] && pad=
            echo "v$i-$pad" > "$MNT/k"
        done
    ) &
    writer=$!
    "$FSTEST_BIN" writer "$MNT/k2" 1
    "$FSTEST_BIN" writer "$MNT/k2" 1500 &
    cwriter=$!
    run "$FSTEST_BIN" reader "$MNT/k" 2
    r1=$status
    out1=$output
    run "$FSTEST_BIN" reader "$MNT/k2" 1.5
    wait "$writer" "$cwriter"
    echo "shell writer: $out1"
    echo "C writer: $output"
    [ "$r1" -eq 0 ]
    assert_success
}
