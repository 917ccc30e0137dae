#!/usr/bin/env bats
# Data-dir health: one flipped byte in each kind of file of a stopped
# member's data directory (a copy of it) is found by raftfs check, which
# names the problem, and, where a start can find it, refuses the mount.
# A byte of a value in the LMDB tree is found by its inode's checksum of
# it, by check and at start (docs/operations.md, "Data-dir health").

load helpers

setup() {
    common_setup
    # One member, an image every 20 entries: the directory has every kind
    # of file (identity, snapshots/snap-*, wal/*.seg, store/data.mdb).
    raftfs_start --snapshot-entries 20
    for i in $(seq 1 45); do echo "value $i" >"$MNT/k$i"; done
    mkdir "$MNT/dir"
    printf 'MARKER-%s' "$(head -c 64 /dev/zero | tr '\0' Q)" >"$MNT/dir/marked"
    raftfs_stop
    run "$RAFTFS_BIN" check --data "$DATA"
    assert_success
    COPY=$TEST_TMP/copy
    MNT2=$TEST_TMP/mnt2
    mkdir "$MNT2"
}

teardown() {
    if mountpoint -q "$MNT2" 2>/dev/null; then
        fusermount3 -u "$MNT2" 2>/dev/null || true
    fi
    local pid
    pid=$(cat "$COPY/raftfs.lock" 2>/dev/null || true)
    [ -z "$pid" ] || wait_gone "$pid" 10 || kill -9 "$pid" 2>/dev/null || true
    common_teardown
}

flip() { # FILE OFFSET...: one byte changed at each offset of FILE (in the copy)
    "$PYTHON3" - "$@" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    for off in map(int, sys.argv[2:]):
        f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x40]))
EOF
}

fresh_copy() {
    rm -rf "$COPY"
    cp -a "$DATA" "$COPY"
}

# check fails naming PATTERN; mount refuses with MOUNT-PATTERN, mounting nothing.
refused() { # PATTERN MOUNT-PATTERN
    run "$RAFTFS_BIN" check --data "$COPY"
    assert_failure 1
    assert_output --partial "$1"
    run "$RAFTFS_BIN" mount "$MNT2" --data "$COPY" 3>&- </dev/null
    assert_failure 1
    assert_output --partial "$2"
    assert_output --partial "refusing to start"
    refute mountpoint -q "$MNT2"
}

last_nonzero() { # FILE: offset of its last byte that is not zero
    "$PYTHON3" -c 'import sys; d = open(sys.argv[1], "rb").read(); print(len(d.rstrip(b"\0")) - 1)' "$1"
}

@test "a flipped byte in the identity file: check and mount refuse it" {
    fresh_copy
    flip "$COPY/identity" 30
    refused "the identity file is damaged (identity)" "identity is damaged"
}

@test "a flipped byte in the snapshot image: check and mount refuse it" {
    fresh_copy
    img=$(ls "$COPY"/snapshots/snap-*)
    flip "$img" $(($(stat -c %s "$img") / 2))
    refused "(snapshots/snap-" "snapshot image $img is damaged (snapshot image: "
}

@test "a flipped byte in a log segment: check and mount refuse it, wherever it is" {
    seg=wal/$(basename "$(ls "$DATA"/wal/*.seg | tail -1)")
    # its header
    fresh_copy
    flip "$COPY/$seg" 10
    refused "$seg: not a segment of the log (bad header)" "the Raft log is damaged"
    # its first batch, with good ones after it
    fresh_copy
    flip "$COPY/$seg" 100
    refused "$seg: batch at offset 32 is damaged and a later one is not" "the Raft log is damaged"
    # its last batch, which a start takes for a write torn by a crash: its
    # entries were applied, so the log ends before the applied index
    fresh_copy
    flip "$COPY/$seg" "$(last_nonzero "$COPY/$seg")"
    refused "beyond the log's last entry" "but the Raft log ends at"
}

@test "a flipped byte in the LMDB tree: its header, or a value, refuses the mount and fails check" {
    # the environment's meta page
    fresh_copy
    flip "$COPY/store/data.mdb" 20
    refused "store/data.mdb is not a usable LMDB file" "data.mdb is not a usable LMDB file"
    # a byte of a value, in every copy of its page LMDB holds (the live
    # one among them): the tree still decodes and walks, and the inode's
    # checksum of the value finds it, at start and in check (with or
    # without its rebuild from the image and the log)
    fresh_copy
    offsets=()
    for o in $(grep -boa "MARKER-QQQQ" "$COPY/store/data.mdb" | cut -d: -f1); do
        offsets+=($((o + 20)))
    done
    [ "${#offsets[@]}" -gt 0 ]
    flip "$COPY/store/data.mdb" "${offsets[@]}"
    refused "value does not match its checksum: damaged (/dir/marked)" \
        "record or value does not match its checksum: the store is damaged"
    run "$RAFTFS_BIN" check --data "$COPY" --no-rebuild
    assert_failure 1
    assert_output --partial "value does not match its checksum: damaged (/dir/marked)"
    run "$RAFTFS_BIN" check --data "$COPY" --json
    assert_failure 1
    assert_output --partial '"ok": false'
    # --no-value-check starts on it (the operator's choice, for a large tree)
    "$RAFTFS_BIN" mount "$MNT2" --data "$COPY" --no-value-check 3>&- </dev/null
    mountpoint -q "$MNT2"
    pid=$(cat "$COPY/raftfs.lock")
    fusermount3 -u "$MNT2"
    wait_gone "$pid"
    # the directory checked is left as it was, and compared
    run "$RAFTFS_BIN" check --data "$DATA" --json
    assert_success
    assert_output --partial '"rebuilt": true'
    # no room for the rebuild: said, not taken for damage
    fresh_copy
    run env TMPDIR="$TEST_TMP/none" "$RAFTFS_BIN" check --data "$COPY"
    assert_success
    assert_output --partial "note: not compared with its image and log: cannot make a scratch directory"
}
