#!/usr/bin/env bats
# Access control on the client protocol (store/store_auth.c,
# node/node_client.c): logins, per-prefix permissions checked where a
# command falls in the log, root-only management, passwords kept out of
# logs and the data directory, and the mount left to POSIX modes.

load helpers
load cluster_helpers

setup() {
    cluster_setup
    PW=$TEST_TMP/pw
    mkdir -p "$PW"
    echo root-Secret-1 > "$PW/root"
    echo alice-Secret-2 > "$PW/alice"
    chmod 600 "$PW"/*
}

teardown() {
    if [ -n "${SOLO_MNT:-}" ] && mountpoint -q "$SOLO_MNT"; then
        fusermount3 -u "$SOLO_MNT" || umount -l "$SOLO_MNT"
    fi
    cluster_teardown
}

as_root() {
    "$RAFTFS_BIN" "$@" --user root --password-file "$PW/root"
}

as_alice() {
    "$RAFTFS_BIN" "$@" --user alice --password-file "$PW/alice"
}

# root, and alice with the role app: readwrite /app, read /shared.
setup_auth() {
    export RAFTFS_ENDPOINTS=$(all_eps)
    "$RAFTFS_BIN" user add root --new-password-file "$PW/root"
    "$RAFTFS_BIN" user add alice < "$PW/alice"
    "$RAFTFS_BIN" role add app
    "$RAFTFS_BIN" role grant app readwrite /app
    "$RAFTFS_BIN" role grant app read /shared
    "$RAFTFS_BIN" user grant-role alice app
    "$RAFTFS_BIN" mkdir /app
    "$RAFTFS_BIN" mkdir /shared
    "$RAFTFS_BIN" put /shared/motd hello
    "$RAFTFS_BIN" put /secret s3
    "$RAFTFS_BIN" auth enable
}

@test "a user without permission on a prefix gets an error and changes nothing" {
    cluster_start
    setup_auth
    # Through every member: a follower forwards, apply checks.
    for k in 1 2 3; do
        run as_alice put /secret "changed by $k" --endpoints "$(ep "$k")"
        [ "$status" -eq 1 ]
        assert_output --partial "ermission denied"
        run as_alice put /shared/motd changed --endpoints "$(ep "$k")"
        [ "$status" -eq 1 ]
        assert_output --partial "ermission denied"
        run as_alice get /secret --endpoints "$(ep "$k")"
        [ "$status" -eq 1 ]
        assert_output --partial "ermission denied"
        as_alice put /app/from_$k "ok $k" --endpoints "$(ep "$k")"
    done
    run as_alice del /secret
    [ "$status" -eq 1 ]
    run as_alice mkdir /elsewhere
    [ "$status" -eq 1 ]
    # A txn whose other branch reaches outside: refused whole.
    printf 'then put /app/t 1\nelse put /secret no\n' > "$TEST_TMP/txn1"
    run as_alice txn --file "$TEST_TMP/txn1"
    [ "$status" -eq 1 ]
    assert_output --partial "ermission denied"
    # A rename out of the prefix, a watch and an export of what is not hers.
    printf 'then mv /app/from_1 /moved\n' > "$TEST_TMP/txn2"
    run as_alice txn --file "$TEST_TMP/txn2"
    [ "$status" -eq 1 ]
    run as_alice export /
    [ "$status" -eq 1 ]
    assert_output --partial "ermission denied"
    run timeout 5 "$RAFTFS_BIN" watch / --user alice --password-file "$PW/alice"
    [ "$status" -eq 1 ]
    # Nothing changed: the mounts show the old values, no stray entries.
    for k in 1 2 3; do
        [ "$(cat "$CL/mnt/$k/secret")" = s3 ]
        [ "$(cat "$CL/mnt/$k/shared/motd")" = hello ]
        [ ! -e "$CL/mnt/$k/elsewhere" ]
        [ ! -e "$CL/mnt/$k/moved" ]
        [ ! -e "$CL/mnt/$k/app/t" ]
        [ "$(cat "$CL/mnt/$k/app/from_$k")" = "ok $k" ]
    done
    # What she may: read /shared, read and write /app.
    run as_alice get /shared/motd
    assert_output hello
    run as_alice ls /app
    assert_output "$(printf 'from_1\nfrom_2\nfrom_3')"
}

@test "logins: anonymous and wrong passwords are refused, status stays open" {
    cluster_start
    setup_auth
    run "$RAFTFS_BIN" get /shared/motd
    [ "$status" -eq 1 ]
    assert_output --partial "Operation not permitted"
    run "$RAFTFS_BIN" put /app/x 1
    [ "$status" -eq 1 ]
    run "$RAFTFS_BIN" status --endpoints "$(ep 1)"
    assert_success
    run "$RAFTFS_BIN" auth status
    assert_output enabled
    # A wrong password: refused at the Hello, once: the client does not try
    # again, here or at another member.
    run "$RAFTFS_BIN" get /app --user alice:wrong --timeout 30
    [ "$status" -eq 1 ]
    assert_output --partial "authentication failed"
    [ "$(cat "$CL"/data/*/raftfs.log | grep -c "login of user alice from .* refused: wrong password")" -eq 1 ]
    run "$RAFTFS_BIN" get /app --user nobody:x
    assert_output --partial "authentication failed"
    run as_alice auth whoami
    assert_output alice
    # The environment works as the options do.
    RAFTFS_USER=alice RAFTFS_PASSWORD=alice-Secret-2 run "$RAFTFS_BIN" get /shared/motd
    assert_output hello
}

@test "only root manages access control, and a revocation holds at once" {
    cluster_start
    setup_auth
    run as_alice role grant app readwrite /
    [ "$status" -eq 1 ]
    assert_output --partial "ermission denied"
    run as_alice user grant-role alice root
    [ "$status" -eq 1 ]
    run as_alice auth disable
    [ "$status" -eq 1 ]
    run as_alice user list
    [ "$status" -eq 1 ]
    run as_alice member remove 3
    [ "$status" -eq 1 ]
    assert_output --partial "ermission denied"
    # a backup holds every key: root's alone
    run as_alice snapshot save "$TEST_TMP/backup"
    [ "$status" -eq 1 ]
    assert_output --partial "ermission denied"
    [ ! -e "$TEST_TMP/backup" ]
    as_root snapshot save "$TEST_TMP/backup"
    "$RAFTFS_BIN" snapshot status "$TEST_TMP/backup"
    run as_root user list
    assert_output "$(printf 'alice\nroot')"
    run as_root role get app
    assert_output "$(printf 'role: app\nreadwrite /app\nread /shared')"
    # The root cannot lock itself out.
    run as_root user delete root
    [ "$status" -eq 1 ]
    assert_output --partial "busy"
    # Revoked through one member; refused through every other right after.
    as_alice put /app/k before
    as_root role revoke app /app --endpoints "$(ep 2)"
    for k in 1 2 3; do
        run as_alice put /app/k after --endpoints "$(ep "$k")"
        [ "$status" -eq 1 ]
        assert_output --partial "ermission denied"
    done
    [ "$(cat "$CL/mnt/1/app/k")" = before ]
    # A new password: the old one no longer logs in.
    echo alice-New-3 | as_root user passwd alice
    run as_alice get /shared/motd
    assert_output --partial "authentication failed"
    run "$RAFTFS_BIN" get /shared/motd --user alice:alice-New-3
    assert_output hello
    # Disabled again: anyone may.
    as_root auth disable
    "$RAFTFS_BIN" put /app/k open
    [ "$(cat "$CL/mnt/3/app/k")" = open ]
}

@test "passwords never reach a log or the data directory" {
    cluster_start
    setup_auth
    as_alice put /app/k v
    run "$RAFTFS_BIN" get /app/k --user alice:wrong-Guess-9
    echo alice-New-4 | as_root user passwd alice
    "$LC" stop "$CL" >/dev/null
    for s in root-Secret-1 alice-Secret-2 wrong-Guess-9 alice-New-4; do
        if grep -rl -- "$s" "$CL/data"; then
            echo "# $s found above"
            false
        fi
    done
}

@test "the mounts keep POSIX modes: other users see what modes allow (allow_other)" {
    command -v setpriv >/dev/null || skip "setpriv missing"
    # Access control is for the client port; a member's own mount belongs
    # to the local system, governed by modes (default_permissions).
    SOLO_MNT=$TEST_TMP/solo-mnt
    mkdir -p "$SOLO_MNT"
    chmod 755 "$TEST_TMP"
    "$RAFTFS_BIN" mount "$SOLO_MNT" --data "$TEST_TMP/solo" -o allow_other 3>&- </dev/null
    echo mine > "$SOLO_MNT/private"
    chmod 600 "$SOLO_MNT/private"
    echo all > "$SOLO_MNT/public"
    chmod 644 "$SOLO_MNT/public"
    run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$SOLO_MNT/public"
    assert_success
    assert_output all
    run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$SOLO_MNT/private"
    [ "$status" -ne 0 ]
    assert_output --partial "ermission denied"
    run setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "echo x > '$SOLO_MNT/public'"
    [ "$status" -ne 0 ]
    [ "$(cat "$SOLO_MNT/public")" = all ]
    # Without allow_other, another user cannot enter the mount at all.
    pid=$(cat "$TEST_TMP/solo/raftfs.lock")
    fusermount3 -u "$SOLO_MNT"
    wait_gone "$pid"
    "$RAFTFS_BIN" mount "$SOLO_MNT" --data "$TEST_TMP/solo" 3>&- </dev/null
    run setpriv --reuid=65534 --regid=65534 --clear-groups cat "$SOLO_MNT/public"
    [ "$status" -ne 0 ]
    pid=$(cat "$TEST_TMP/solo/raftfs.lock")
    fusermount3 -u "$SOLO_MNT"
    wait_gone "$pid"
    SOLO_MNT=
}
