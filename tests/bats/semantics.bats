#!/usr/bin/env bats
# File semantics at the syscall level: the errno table, conflicts, sizes
# reported to writers, xattrs, renames with flags, unlinked open files.

load helpers

setup() {
    common_setup
    raftfs_start
}

teardown() {
    common_teardown
}

@test "a writer sees its own uncommitted size; other processes the committed one" {
    printf 'committed-value\n' > "$MNT/k"
    run "$FSTEST_BIN" write-fstat "$MNT/k" "abc" 10
    assert_success
    assert_line "after write: 3"
    assert_line "after ftruncate: 10"
    assert_line "other process: 16"
    assert_line "close: OK"
    assert_line "after close: 10"
}

@test "truncate(2) by the writing process, racing its own close, is never lost" {
    printf 'x\n' > "$MNT/t"
    # (the build before the fix lost 2-3 in 1,000: 2,000 rounds miss that
    # with a chance of about 1 in 150)
    run "$FSTEST_BIN" truncate-close-race "$MNT/t" 2000
    assert_success
    assert_line "rounds 2000, wrong size 0"
}

@test "truncate(2) of a file whose writer committed is committed when it returns, and not again at the close" {
    printf 'x\n' > "$MNT/k"
    run "$FSTEST_BIN" truncate-dup "$MNT/k"
    assert_success
    assert_line "close: OK"
    assert_line "truncate: OK"
    assert_line --index 2 "other reads: a"
    assert_line "other writes: OK"
    assert_line "close dup: OK"
    assert_line --index 5 "other reads: bbb"
    run cat "$MNT/k"
    assert_output "bbb"
    # A descriptor whose commits expect the revision it saw goes on from
    # the truncated value, as on a local file system, without a conflict.
    printf 'x\n' > "$MNT/k"
    run "$FSTEST_BIN" truncate-dup-write "$MNT/k"
    assert_success
    assert_line "truncate: OK"
    assert_line "other reads: a"
    assert_line "write: OK"
    assert_line "close dup: OK"
    [ "$(od -An -c "$MNT/k" | tr -s ' ')" = " a \\0 \\0 \\0 Z" ]
}

@test "mmap of a read-write file reads and writes through" {
    run "$FSTEST_BIN" mmap-rw "$MNT/m"
    assert_success
    assert_line "mapped: hello world"
    assert_line "close: OK"
    run cat "$MNT/m"
    assert_output "Hello world"
}

@test "a concurrent change is a conflict: close fails with ESTALE" {
    echo original > "$MNT/k"
    run "$FSTEST_BIN" conflict "$MNT/k"
    assert_line "close: ESTALE"
    run cat "$MNT/k"
    assert_output "other"
}

@test "one's own chmod on an open file is not a conflict" {
    echo original > "$MNT/k"
    run "$FSTEST_BIN" chmod-write "$MNT/k"
    assert_line "close: OK"
    run cat "$MNT/k"
    assert_output "after chmod"
    [ "$(stat -c %a "$MNT/k")" = 600 ]
}

@test "writing at an offset keeps the rest of the value" {
    printf 'hello world\n' > "$MNT/k"
    run "$FSTEST_BIN" write-at "$MNT/k" 6 "WORLD"
    assert_line "pwrite: OK"
    assert_line "close: OK"
    run cat "$MNT/k"
    assert_output "hello WORLD"
    # an offset past the size limit
    run "$FSTEST_BIN" write-at "$MNT/k" 1048576 "x"
    assert_line "pwrite: EFBIG"
}

@test "a failed write poisons its descriptor: ftruncate and close fail; a truncate by path works" {
    printf 'hello world\n' > "$MNT/k"
    run "$FSTEST_BIN" poisoned "$MNT/k"
    assert_line "pwrite: EFBIG"
    assert_line "ftruncate: EFBIG"
    assert_line "truncate: OK"
    assert_line "close: EFBIG"
    run cat "$MNT/k"
    assert_output "hel"
}

@test "a file unlinked while open stays readable through its descriptor" {
    echo "still here" > "$MNT/k"
    run "$FSTEST_BIN" unlink-read "$MNT/k"
    assert_success
    assert_output "read after unlink: still here"
    [ ! -e "$MNT/k" ]
}

@test "a descriptor reads one version whole, also when the key is rewritten between its reads" {
    echo "old value" > "$MNT/k"
    run "$FSTEST_BIN" read-split "$MNT/k"
    assert_success
    assert_output "read: old value"
    [ "$(cat "$MNT/k")" = "a newer and longer value" ]
}

@test "a reader of a file replaced by mv keeps reading the old value" {
    echo old > "$MNT/k"
    exec 5< "$MNT/k"
    echo new > "$MNT/k.tmp"
    mv "$MNT/k.tmp" "$MNT/k"
    run cat <&5
    exec 5<&-
    assert_output "old"
    run cat "$MNT/k"
    assert_output "new"
}

@test "rename with RENAME_NOREPLACE and RENAME_EXCHANGE" {
    echo a > "$MNT/a"
    echo b > "$MNT/b"
    run "$FSTEST_BIN" rename2 "$MNT/a" "$MNT/b" noreplace
    assert_output "EEXIST"
    run "$FSTEST_BIN" rename2 "$MNT/a" "$MNT/c" noreplace
    assert_output "OK"
    run "$FSTEST_BIN" rename2 "$MNT/c" "$MNT/b" exchange
    assert_output "OK"
    [ "$(cat "$MNT/b")" = a ]
    [ "$(cat "$MNT/c")" = b ]
    mkdir "$MNT/d"
    echo in > "$MNT/d/x"
    run "$FSTEST_BIN" rename2 "$MNT/d" "$MNT/c" exchange
    assert_output "OK"
    [ "$(cat "$MNT/c/x")" = in ]
    [ "$(cat "$MNT/d")" = b ]
    run "$FSTEST_BIN" rename2 "$MNT/c" "$MNT/nope" exchange
    assert_output "ENOENT"
    run "$FSTEST_BIN" rename2 "$MNT/b" "$MNT/e" whiteout
    assert_output "EINVAL"
}

@test "rename errors: into itself, dir over file, file over dir, over a non-empty dir" {
    mkdir -p "$MNT/d/sub" "$MNT/e" "$MNT/full"
    echo x > "$MNT/f"
    echo y > "$MNT/full/k"
    run "$FSTEST_BIN" rename2 "$MNT/d" "$MNT/d/sub/inside" none
    assert_output "EINVAL"
    run "$FSTEST_BIN" rename2 "$MNT/d" "$MNT/f" none
    assert_output "ENOTDIR"
    run "$FSTEST_BIN" rename2 "$MNT/f" "$MNT/e" none
    assert_output "EISDIR"
    run "$FSTEST_BIN" rename2 "$MNT/d" "$MNT/full" none
    assert_output "ENOTEMPTY"
    run "$FSTEST_BIN" rename2 "$MNT/d" "$MNT/e" none
    assert_output "OK"
    [ -d "$MNT/e/sub" ]
}

@test "O_EXCL create of an existing name fails with EEXIST" {
    echo x > "$MNT/k"
    run "$FSTEST_BIN" create-excl "$MNT/k"
    assert_output "EEXIST"
    run "$FSTEST_BIN" create-excl "$MNT/new"
    assert_output "OK"
}

@test "unlink, rmdir and lookups return the documented errors" {
    mkdir "$MNT/d"
    echo x > "$MNT/f"
    run rm "$MNT/nope"
    assert_output --partial "No such file or directory"
    run rmdir "$MNT/f"
    assert_output --partial "Not a directory"
    run bash -c "echo x > '$MNT/f/k'"
    assert_output --partial "Not a directory"
    run bash -c "echo x > '$MNT/d'"
    assert_output --partial "Is a directory"
    run cat "$MNT/nope"
    assert_output --partial "No such file or directory"
}

@test "special files, symlinks and hard links are refused with EPERM" {
    echo x > "$MNT/f"
    run "$FSTEST_BIN" mkfifo "$MNT/fifo"
    assert_output "EPERM"
    run "$FSTEST_BIN" symlink "$MNT/f" "$MNT/sym"
    assert_output "EPERM"
    run "$FSTEST_BIN" link "$MNT/f" "$MNT/hard"
    assert_output "EPERM"
    run "$FSTEST_BIN" mknod-reg "$MNT/reg"
    assert_output "OK"
    [ "$(stat -c '%F %a' "$MNT/reg")" = "regular empty file 640" ]
}

@test "xattrs: revision names are read-only, others unsupported" {
    echo x > "$MNT/k"
    run setfattr -n user.raftfs.revision -v 5 "$MNT/k"
    assert_failure
    assert_output --partial "Operation not permitted"
    run setfattr -n user.other -v 5 "$MNT/k"
    assert_failure
    assert_output --partial "Operation not supported"
    run getfattr -n user.nope "$MNT/k"
    assert_failure
    assert_output --partial "No such attribute"
    # directories carry revisions too
    mkdir "$MNT/d"
    r1=$(getfattr --only-values -n user.raftfs.revision "$MNT/d")
    echo y > "$MNT/d/k"
    r2=$(getfattr --only-values -n user.raftfs.revision "$MNT/d")
    [ "$r2" -gt "$r1" ]
}

@test "the name .raftfs at the root is the control folder; deeper it is an ordinary name" {
    run mkdir "$MNT/.raftfs"
    assert_failure
    assert_output --partial "File exists"
    run touch "$MNT/.raftfs/k"
    assert_failure
    assert_output --partial "Read-only file system"
    mkdir "$MNT/d"
    mkdir "$MNT/d/.raftfs"
}

@test "statfs reports the store's size and name limit" {
    run stat -f -c '%l %S' "$MNT"
    assert_output "255 4096"
    run df -P "$MNT"
    assert_success
    assert_line --partial "raftfs"
}

@test "a directory of 2,000 keys lists completely, in pages" {
    mkdir "$MNT/big"
    ( cd "$MNT/big" && seq -f 'k%05g' 1 2000 | xargs touch )
    [ "$(ls "$MNT/big" | wc -l)" -eq 2000 ]
    [ "$(ls -f "$MNT/big" | wc -l)" -eq 2002 ]
    [ "$(find "$MNT/big" -type f | wc -l)" -eq 2000 ]
    [ "$(ls "$MNT/big" | sort -u | wc -l)" -eq 2000 ]
}

@test "inode numbers are stable and not reused" {
    echo x > "$MNT/a"
    i1=$(stat -c %i "$MNT/a")
    mv "$MNT/a" "$MNT/b"
    [ "$(stat -c %i "$MNT/b")" = "$i1" ]
    rm "$MNT/b"
    echo y > "$MNT/a"
    [ "$(stat -c %i "$MNT/a")" -gt "$i1" ]
}

@test "new entries belong to the caller; a setgid directory passes on its group" {
    mkdir "$MNT/d"
    chgrp 4321 "$MNT/d"
    chmod 2775 "$MNT/d"
    echo x > "$MNT/d/f"
    mkdir "$MNT/d/sub"
    [ "$(stat -c '%u %g' "$MNT/d/f")" = "0 4321" ]
    [ "$(stat -c '%g %a' "$MNT/d/sub")" = "4321 2755" ]
    echo y > "$MNT/plain"
    [ "$(stat -c '%u %g' "$MNT/plain")" = "0 0" ]
}
