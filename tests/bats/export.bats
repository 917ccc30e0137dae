#!/usr/bin/env bats
# raftfs export and import on a real 3-member cluster: one revision per
# export, the same bytes from every member, never old and new keys mixed,
# and imports that are all or nothing.

load helpers
load cluster_helpers

setup() {
    cluster_setup
    WRITER_PID=""
}

teardown() {
    if [ -n "$WRITER_PID" ]; then
        kill "$WRITER_PID" 2>/dev/null || true
        wait "$WRITER_PID" 2>/dev/null || true
    fi
    cluster_teardown
}

rev_of() { # K: member K's revision
    status_of "$1" | sed -nE 's/.*"revision": ([0-9]+).*/\1/p'
}

@test "export at a revision is the same on every member, and refused once the prefix changed" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    "$RAFTFS_BIN" txn <<'EOF'
then mkdir /app
then mkdir /app/db
then put /app/db/url "postgres://db:5432/app"
then put /app/mode blue
then put /app/blob "\x00\xff\x01 not utf-8"
EOF
    r=$(rev_of 1)
    # Changes elsewhere do not move what /app was at r.
    "$RAFTFS_BIN" put /other x
    for fmt in json tar; do
        for k in 1 2 3; do
            "$RAFTFS_BIN" export /app --revision "$r" --format "$fmt" \
                --endpoints "$(ep "$k")" --output "$TEST_TMP/$fmt.$k"
        done
        cmp "$TEST_TMP/$fmt.1" "$TEST_TMP/$fmt.2"
        cmp "$TEST_TMP/$fmt.1" "$TEST_TMP/$fmt.3"
    done
    grep -q "\"revision\": $r," "$TEST_TMP/json.1"
    grep -q '"value_base64": "AP8BIG5vdCB1dGYtOA=="' "$TEST_TMP/json.1"
    [ "$(tar -tf "$TEST_TMP/tar.1" | tr '\n' ' ')" = "app/ app/blob app/db/ app/db/url app/mode " ]
    # The latest revision too, each member's own state (serializable).
    sleep 0.5
    for k in 1 2 3; do
        "$RAFTFS_BIN" export / --serializable --endpoints "$(ep "$k")" >"$TEST_TMP/all.$k"
    done
    cmp "$TEST_TMP/all.1" "$TEST_TMP/all.2"
    cmp "$TEST_TMP/all.1" "$TEST_TMP/all.3"
    # Once /app changed, r is gone for it (not for what did not change).
    w=$("$RAFTFS_BIN" txn <<<'then put /app/mode green' | sed -n 's/^revision //p')
    run "$RAFTFS_BIN" export /app --revision "$r"
    assert_failure 1
    assert_output --partial "/app changed at revision $w, after $r"
    "$RAFTFS_BIN" export /app/db --revision "$r" >/dev/null
    run "$RAFTFS_BIN" export /app --revision $((w + 1000)) --timeout 1
    assert_failure 1
    assert_output --partial "is not reached yet"
    run "$RAFTFS_BIN" export /nope
    assert_failure 1
    assert_output --partial "No such file or directory"
}

@test "an export never mixes old and new keys while txns change them" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    # /cfg/a and /cfg/zz change together; 40 padding keys of 500 bytes
    # between them put them on different pages of 2000 bytes.
    "$RAFTFS_BIN" txn <<<$'then mkdir /cfg\nthen put /cfg/a 0\nthen put /cfg/zz 0'
    for i in $(seq 1 40); do printf 'then put /cfg/pad%02d %0500d\n' "$i" 0; done |
        "$RAFTFS_BIN" txn >/dev/null
    (
        i=0
        while :; do
            i=$((i + 1))
            printf 'then put /cfg/a %d\nthen put /cfg/pad20 %0500d\nthen put /cfg/zz %d\n' \
                "$i" "$i" "$i" | "$RAFTFS_BIN" txn >/dev/null 2>&1 || true
            sleep 0.05
        done
    ) &
    WRITER_PID=$!
    ok=0
    for n in $(seq 1 20); do
        k=$(( (n % 3) + 1 ))
        if "$RAFTFS_BIN" export /cfg --page-bytes 2000 --endpoints "$(ep "$k")" \
            >"$TEST_TMP/e" 2>"$TEST_TMP/err"; then
            a=$(sed -n 's|.*"path": "/cfg/a".*"value": "\([0-9]*\)".*|\1|p' "$TEST_TMP/e")
            z=$(sed -n 's|.*"path": "/cfg/zz".*"value": "\([0-9]*\)".*|\1|p' "$TEST_TMP/e")
            [ -n "$a" ] && [ "$a" = "$z" ] || { echo "# mixed: a=$a zz=$z"; false; }
            ok=$((ok + 1))
        else
            grep -q "changed during" "$TEST_TMP/err" || { cat "$TEST_TMP/err"; false; }
        fi
    done
    echo "# $ok of 20 exports complete under writes" >&3
    [ "$ok" -ge 5 ]
}

@test "import: an export back, moved with --to, all or nothing, and into a path that exists refused" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    "$RAFTFS_BIN" txn <<'EOF'
then mkdir /app
then mkdir /app/empty
then put /app/url "http://a"
then put /app/bin "\x00\x01\x02"
EOF
    "$RAFTFS_BIN" export /app >"$TEST_TMP/app.json"
    "$RAFTFS_BIN" export /app --format tar >"$TEST_TMP/app.tar"
    run "$RAFTFS_BIN" import "$TEST_TMP/app.json"
    assert_failure 1
    assert_output --partial "/app exists: nothing was imported"
    run "$RAFTFS_BIN" import "$TEST_TMP/app.json" --to /staging/new
    assert_failure 1
    assert_output --partial "No such file or directory; nothing was imported"
    "$RAFTFS_BIN" import "$TEST_TMP/app.json" --to /v2
    "$RAFTFS_BIN" import --to /v3 <"$TEST_TMP/app.tar"
    for d in v2 v3; do
        "$RAFTFS_BIN" export "/$d" | sed -n 's/.*"path": "\([^"]*\)".*"mode": "\([0-7]*\)".*/\1 \2/p' |
            sed "s|^/$d|/app|" >"$TEST_TMP/$d.list"
    done
    "$RAFTFS_BIN" export /app | sed -n 's/.*"path": "\([^"]*\)".*"mode": "\([0-7]*\)".*/\1 \2/p' \
        >"$TEST_TMP/app.list"
    diff "$TEST_TMP/app.list" "$TEST_TMP/v2.list"
    diff "$TEST_TMP/app.list" "$TEST_TMP/v3.list"
    [ "$("$RAFTFS_BIN" get /v3/bin | od -An -tx1 | tr -d ' \n')" = 000102 ]
    # Every member sees the import on its mount.
    for k in 1 2 3; do
        for _ in $(seq 1 50); do [ -e "$CL/mnt/$k/v3/url" ] && break; sleep 0.1; done
        [ "$(cat "$CL/mnt/$k/v2/url")" = "http://a" ]
        [ -d "$CL/mnt/$k/v3/empty" ]
    done
    # Publish: swap the new tree in with one txn.
    "$RAFTFS_BIN" txn <<<$'then mv /app /app.old\nthen mv /v2 /app'
    [ "$(cat "$CL/mnt/1/app/url")" = "http://a" ]
}

@test "import: batches, a plain tar, and bad archives refused with the reason" {
    cluster_start
    export RAFTFS_ENDPOINTS=$(all_eps)
    mkdir -p "$TEST_TMP/src/conf.d"
    for i in $(seq 1 30); do echo "line $i" >"$TEST_TMP/src/conf.d/f$i.conf"; done
    tar -C "$TEST_TMP/src" -cf "$TEST_TMP/plain.tar" .
    run "$RAFTFS_BIN" import "$TEST_TMP/plain.tar" --to /etc --batch 7
    assert_success
    assert_output --partial "imported 32 entries at /etc"
    [ "$("$RAFTFS_BIN" get /etc/conf.d/f30.conf)" = "line 30" ]
    [ "$("$RAFTFS_BIN" ls /etc/conf.d | wc -l)" = 30 ]
    # A link is not a key: refused, nothing imported.
    ln -s f1.conf "$TEST_TMP/src/conf.d/link"
    tar -C "$TEST_TMP/src" -cf "$TEST_TMP/link.tar" .
    run "$RAFTFS_BIN" import "$TEST_TMP/link.tar" --to /etc2
    assert_failure 1
    assert_output --partial "neither a file nor a directory"
    head -c 3000 "$TEST_TMP/plain.tar" >"$TEST_TMP/short.tar"
    run "$RAFTFS_BIN" import "$TEST_TMP/short.tar" --to /etc3
    assert_failure 1
    assert_output --partial "cannot be read as tar"
    printf 'junk that is not an archive at all' >"$TEST_TMP/junk"
    run "$RAFTFS_BIN" import "$TEST_TMP/junk" --to /etc4
    assert_failure 1
    bad=(
        '{"format": "raftfs-export", "version": 2, "prefix": "/a", "entries": []}'
        '{"format": "other", "version": 1, "prefix": "/a", "entries": []}'
        '{"format": "raftfs-export", "version": 1, "prefix": "/a", "entries": [{"path": "/a", "type": "link", "mode": "0755"}]}'
        '{"format": "raftfs-export", "version": 1, "prefix": "/a", "entries": [{"path": "/a/f", "type": "file", "mode": "0644"}]}'
        '{"format": "raftfs-export", "version": 1, "prefix": "/a", "entries": [{"path": "/a/f", "type": "file", "mode": "9", "value": ""}]}'
        '{"format": "raftfs-export", "version": 1, "prefix": "/a", "entries": [{"path": "/b", "type": "dir", "mode": "0755"}]}'
        '{"format": "raftfs-export", "version": 1, "prefix": "/a", "entries": [{"path": "/a/x", "type": "file", "mode": "0644", "value_base64": "!!"}]}'
        '{"format": "raftfs-export", "version": 1, "prefix": "/a", "entries": [{"path": "/a/x", "type": "file", "mode": "0644", "value": "\ud800"}]}'
        '{"format": "raftfs-export", "version": 1, "prefix": "/a", "entries": [}'
    )
    for j in "${bad[@]}"; do
        run "$RAFTFS_BIN" import --to /z <<<"$j"
        [ "$status" -eq 1 ] || { echo "# accepted: $j"; false; }
        [[ "$output" == "raftfs import: "* ]] || { echo "# unclear: $output"; false; }
    done
    run "$RAFTFS_BIN" ls /
    refute_output --partial "z"
    refute_output --partial "etc2"
}
