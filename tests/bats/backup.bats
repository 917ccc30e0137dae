#!/usr/bin/env bats
# raftfs snapshot save/status/restore on real clusters on loopback: a
# backup taken while a writer writes is one revision, restores into a new
# cluster as that revision, and a damaged or cut file is never taken for a
# good one.

load helpers
load cluster_helpers

setup() {
    cluster_setup
    WRITER_PID=""
    CL2=$TEST_TMP/cluster2
    BASE2=$((RAFTFS_BASE_PORT + 10))
}

teardown() {
    if [ -n "$WRITER_PID" ]; then
        kill "$WRITER_PID" 2>/dev/null || true
        wait "$WRITER_PID" 2>/dev/null || true
    fi
    local san=0
    if [ -d "$CL2" ]; then
        show_logs "$CL2"/data/*/raftfs.log
        RAFTFS_BASE_PORT=$BASE2 "$LC" stop "$CL2" >/dev/null 2>&1 || true
        sanitizer_findings "$CL2"/data/*/raftfs.log || san=1
        for k in 1 2 3; do
            if mountpoint -q "$CL2/mnt/$k" 2>/dev/null; then
                echo "# left mounted after stop: $CL2/mnt/$k"
                return 1
            fi
        done
    fi
    cluster_teardown || return 1
    return $san
}

peers2() {
    echo "1=127.0.0.1:$((BASE2 + 1)),2=127.0.0.1:$((BASE2 + 2)),3=127.0.0.1:$((BASE2 + 3))"
}

eps2() {
    echo "127.0.0.1:$((BASE2 + 1)),127.0.0.1:$((BASE2 + 2)),127.0.0.1:$((BASE2 + 3))"
}

json_field() { # FIELD: from the one JSON object on standard input
    "$PYTHON3" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"
}

export_rev() { # FILE: an export's revision
    "$PYTHON3" -c 'import json, sys; print(json.load(open(sys.argv[1]))["revision"])' "$1"
}

# The entries of an export as of revision R, one per line: files and
# directories created at or before R, files as they are (a file changed
# after R fails the comparison), directories by path only (their revision
# moves with their names).
export_as_of() { # R FILE
    "$PYTHON3" - "$1" "$2" <<'EOF'
import json, sys
r = int(sys.argv[1])
for e in json.load(open(sys.argv[2]))["entries"]:
    if e["create_revision"] > r:
        continue
    if e["type"] == "dir":
        print("dir", e["path"])
    else:
        print(json.dumps(e, sort_keys=True))
EOF
}

stop_member() { # DIR K: unmount member K of cluster DIR, wait for its exit
    local pid
    pid=$(cat "$1/data/$2/raftfs.lock")
    fusermount3 -u "$1/mnt/$2"
    wait_gone "$pid" 10
}

@test "snapshot save during writes: status verifies it, restore makes a new cluster holding that revision" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    "$RAFTFS_BIN" txn <<'EOF'
then mkdir /app
then mkdir /app/db
then put /app/db/url "postgres://db:5432/app"
then put /app/blob "\x00\xff\x01 not utf-8"
EOF
    "$RAFTFS_BIN" put /app/mode blue --mode 0600
    lease=$("$RAFTFS_BIN" lease grant 1h)
    "$RAFTFS_BIN" put /app/session alive --lease "$lease"
    "$RAFTFS_BIN" mkdir /w
    (
        i=0
        while :; do
            i=$((i + 1))
            "$RAFTFS_BIN" put "/w/k$i" "$i" || exit 1
        done
    ) &
    WRITER_PID=$!
    sleep 1
    run "$RAFTFS_BIN" snapshot save "$TEST_TMP/backup.snap" --endpoints "$(ep 2)"
    assert_success
    assert_output --partial "backup.snap: index "
    sleep 0.5
    kill "$WRITER_PID"
    wait "$WRITER_PID" 2>/dev/null || true
    WRITER_PID=""
    [ ! -e "$TEST_TMP/backup.snap.part" ]

    run "$RAFTFS_BIN" snapshot status "$TEST_TMP/backup.snap"
    assert_success
    assert_output --regexp ': ok: index [0-9]+, term [0-9]+, revision [0-9]+, [0-9]+ entries \([0-9]+ files, [0-9]+ dirs\), [0-9]+ bytes, digest [0-9a-f]{16}$'
    "$RAFTFS_BIN" snapshot status "$TEST_TMP/backup.snap" --json >"$TEST_TMP/status.json"
    r=$(json_field revision <"$TEST_TMP/status.json")
    # The writer went on after the image: it is one revision in the middle.
    "$RAFTFS_BIN" export / --output "$TEST_TMP/source.json"
    final=$(export_rev "$TEST_TMP/source.json")
    [ "$r" -lt "$final" ]

    # Three new data directories from the one file, a new cluster.
    mkdir -p "$CL2/data"
    for k in 1 2 3; do
        run "$RAFTFS_BIN" snapshot restore "$TEST_TMP/backup.snap" --data "$CL2/data/$k" \
            --id "$k" --peers "$(peers2)" --cluster-token local-cluster
        assert_success
    done
    # A non-empty directory is refused, and left as it is.
    run "$RAFTFS_BIN" snapshot restore "$TEST_TMP/backup.snap" --data "$CL2/data/1" \
        --id 1 --peers "$(peers2)" --cluster-token local-cluster
    assert_failure 1
    assert_output --partial "not empty"
    [ -d "$CL2/data/1/store" ]
    RAFTFS_BASE_PORT=$BASE2 "$LC" start "$CL2" 3 >/dev/null

    # Every member of the new cluster holds the tree as of revision r.
    for k in 1 2 3; do
        "$RAFTFS_BIN" export / --endpoints "127.0.0.1:$((BASE2 + k))" \
            --output "$TEST_TMP/restored.$k.json"
        [ "$(export_rev "$TEST_TMP/restored.$k.json")" = "$r" ]
    done
    export_as_of "$r" "$TEST_TMP/source.json" >"$TEST_TMP/want"
    export_as_of "$r" "$TEST_TMP/restored.1.json" >"$TEST_TMP/got"
    diff "$TEST_TMP/want" "$TEST_TMP/got"
    # ... and nothing newer (export_as_of drops what came after r)
    [ "$(wc -l <"$TEST_TMP/restored.1.json")" = "$(($(wc -l <"$TEST_TMP/got") + 2))" ]
    grep -q '"path": "/w/k1"' "$TEST_TMP/got"
    cmp "$TEST_TMP/restored.1.json" "$TEST_TMP/restored.2.json"
    cmp "$TEST_TMP/restored.1.json" "$TEST_TMP/restored.3.json"
    # The lease came along and still holds its key.
    run "$RAFTFS_BIN" lease ttl "$lease" --endpoints "$(eps2)"
    assert_success
    # The new cluster takes writes, through mounts and the protocol, and
    # has its own members only.
    echo new >"$CL2/mnt/1/after"
    [ "$("$RAFTFS_BIN" get /after --endpoints "127.0.0.1:$((BASE2 + 3))")" = new ]
    [ "$(cat "$CL2/mnt/2/app/db/url")" = "postgres://db:5432/app" ]
    run "$RAFTFS_BIN" member list --endpoints "$(eps2)"
    assert_success
    [ "$(echo "$output" | grep -c "127.0.0.1:$((BASE2 + 1))\|127.0.0.1:$((BASE2 + 2))\|127.0.0.1:$((BASE2 + 3))")" = 3 ]
    refute_output --partial "127.0.0.1:$((RAFTFS_BASE_PORT + 1))"
    # The old cluster is not disturbed by the new one.
    "$RAFTFS_BIN" put /old-still-works yes
}

@test "snapshot status prints the digest raftfs check prints for a member holding that state" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    for i in 1 2 3 4 5; do "$RAFTFS_BIN" put "/k$i" "v$i"; done
    "$RAFTFS_BIN" mkdir /d
    sleep 0.5 # every member applied it
    "$RAFTFS_BIN" snapshot save "$TEST_TMP/s" --endpoints "$(ep 3)"
    "$RAFTFS_BIN" snapshot status "$TEST_TMP/s" --json >"$TEST_TMP/st.json"
    [ "$(json_field ok <"$TEST_TMP/st.json")" = True ]
    [ "$(json_field files <"$TEST_TMP/st.json")" = 5 ]
    [ "$(json_field dirs <"$TEST_TMP/st.json")" = 2 ]
    stop_member "$CL" 2
    "$RAFTFS_BIN" check --data "$CL/data/2" --json >"$TEST_TMP/check.json"
    [ "$(json_field digest <"$TEST_TMP/check.json")" = "$(json_field digest <"$TEST_TMP/st.json")" ]
    [ "$(json_field revision <"$TEST_TMP/check.json")" = "$(json_field revision <"$TEST_TMP/st.json")" ]
}

@test "a truncated or damaged snapshot file is refused by status and restore; a failed save leaves no file" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    for i in $(seq 1 20); do "$RAFTFS_BIN" put "/k$i" "value $i"; done
    f=$TEST_TMP/good.snap
    "$RAFTFS_BIN" snapshot save "$f"
    "$RAFTFS_BIN" snapshot status "$f" >/dev/null
    size=$(stat -c %s "$f")
    bad=$TEST_TMP/bad.snap
    flip() { # OFFSET: a copy of the good file with one byte changed there
        cp "$f" "$bad"
        "$PYTHON3" - "$bad" "$1" <<'EOF'
import sys
p, off = sys.argv[1], int(sys.argv[2])
with open(p, "r+b") as f:
    f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x40]))
EOF
    }
    refused() { # PATTERN: status and restore of $bad fail saying PATTERN
        run "$RAFTFS_BIN" snapshot status "$bad"
        assert_failure 1
        assert_output --partial "$1"
        run "$RAFTFS_BIN" snapshot status "$bad" --json
        assert_failure 1
        assert_output --partial '"ok": false'
        rm -rf "$TEST_TMP/r"
        run "$RAFTFS_BIN" snapshot restore "$bad" --data "$TEST_TMP/r" --id 1 \
            --peers "1=127.0.0.1:$((BASE2 + 1))"
        assert_failure 1
        assert_output --partial "$1"
        [ -z "$(ls -A "$TEST_TMP/r")" ]
    }
    head -c $((size - 1)) "$f" >"$bad"
    refused "truncated"
    head -c $((size / 2)) "$f" >"$bad"
    refused "truncated"
    head -c 64 "$f" >"$bad"
    refused "truncated"
    head -c 10 "$f" >"$bad"
    refused "not a raftfs backup"
    : >"$bad"
    refused "not a raftfs backup"
    flip 30 # the header's term
    refused "backup header fails its checksum"
    flip $((size / 2)) # a record of the image
    refused "damaged"
    flip $((size - 1)) # the image's CRC
    refused "checksum mismatch"
    # A save from a member that does not answer leaves neither file.
    run "$RAFTFS_BIN" snapshot save "$TEST_TMP/none.snap" --endpoints "127.0.0.1:$((BASE2 + 9))" \
        --timeout 1
    assert_failure 1
    [ ! -e "$TEST_TMP/none.snap" ] && [ ! -e "$TEST_TMP/none.snap.part" ]
}
