#!/usr/bin/env bats
# TLS on the member's port (docs/operations.md, "TLS"): a 3-member cluster
# over mutual TLS end to end; members and clients whose certificate another
# CA signed, clients without one, plaintext clients, refused with a log
# line naming the address and OpenSSL's reason; key files others may read,
# and plaintext off loopback, refused at start. The certificates are made
# here with openssl, in the test's temp dir.

load helpers

setup() {
    TEST_TMP=$(mktemp -d /tmp/raftfs-bats.XXXXXX)
    PKI=$TEST_TMP/pki
    BASE=$(test_port_base)
    make_pki
}

teardown() {
    show_logs "$TEST_TMP"/data*/raftfs.log
    local k san=0
    for k in 1 2 3 4; do stop_member "$k"; done
    sanitizer_findings "$TEST_TMP"/data*/raftfs.log || san=1
    for k in 1 2 3 4; do
        if mountpoint -q "$TEST_TMP/mnt$k" 2>/dev/null; then
            echo "# left mounted: $TEST_TMP/mnt$k"
            return 1
        fi
    done
    rm -rf "$TEST_TMP"
    return $san
}

# make_pki: CA "ca" signs members m1..m3 (IP SAN 127.0.0.1, for serving
# and for dialing), "client" (a client certificate) and "elsewhere" (a
# member certificate for another address); CA "other" signs "stranger", a
# member certificate from the wrong CA.
make_pki() {
    mkdir -p "$PKI"
    (
        cd "$PKI"
        key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
        ca() { key "$1" && openssl req -x509 -new -key "$1.key" -out "$1.crt" -days 2 -subj "/CN=$1"; }
        crt() { # NAME CA EXTENSIONS
            key "$1" && openssl req -new -key "$1.key" -out "$1.csr" -subj "/CN=$1" &&
                printf '%b' "$3" >"$1.ext" &&
                openssl x509 -req -in "$1.csr" -CA "$2.crt" -CAkey "$2.key" -CAcreateserial \
                    -days 2 -extfile "$1.ext" -out "$1.crt"
        }
        member='subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n'
        ca ca && ca other &&
            crt m1 ca "$member" && crt m2 ca "$member" && crt m3 ca "$member" &&
            crt stranger other "$member" && crt client ca 'extendedKeyUsage=clientAuth\n' &&
            crt elsewhere ca 'subjectAltName=IP:10.9.9.9\nextendedKeyUsage=serverAuth,clientAuth\n' &&
            crt clienthere ca 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=clientAuth\n' &&
            chmod 600 ./*.key
    ) >/dev/null 2>&1
}

ep() { echo "127.0.0.1:$((BASE + $1))"; }

peers() { echo "1=$(ep 1),2=$(ep 2),3=$(ep 3)"; }

# tls_files CERTNAME [CA]: a member's TLS options
tls_files() {
    echo --cert-file "$PKI/$1.crt" --key-file "$PKI/$1.key" --trusted-ca-file "$PKI/${2:-ca}.crt"
}

# start_member K CERTNAME [OPTIONS...]: member K of the 3, mounted at mnt K
start_member() {
    local k=$1 cert=$2
    shift 2
    mkdir -p "$TEST_TMP/mnt$k"
    # shellcheck disable=SC2046
    "$RAFTFS_BIN" mount "$TEST_TMP/mnt$k" --data "$TEST_TMP/data$k" --id "$k" --peers "$(peers)" \
        $(tls_files "$cert") "$@" 3>&- </dev/null
}

stop_member() { # K
    local k=$1 pid
    pid=$(cat "$TEST_TMP/data$k/raftfs.lock" 2>/dev/null) || pid=
    if mountpoint -q "$TEST_TMP/mnt$k" 2>/dev/null || ! stat "$TEST_TMP/mnt$k" >/dev/null 2>&1; then
        fusermount3 -u "$TEST_TMP/mnt$k" 2>/dev/null || fusermount3 -uz "$TEST_TMP/mnt$k" 2>/dev/null || true
    fi
    if [ -n "$pid" ] && ! wait_gone "$pid" 10; then
        kill -9 "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || true
    fi
}

# the client options of a client with its own certificate
client_tls() {
    echo --cacert "$PKI/ca.crt" --cert "$PKI/client.crt" --key "$PKI/client.key"
}

wait_leader() { # K...: a leader, as one of these members sees it
    local i k
    for i in $(seq 1 100); do
        for k in "$@"; do
            # shellcheck disable=SC2046
            "$RAFTFS_BIN" status --endpoints "$(ep "$k")" --timeout 1 $(client_tls) 2>/dev/null |
                grep -q '"leader": [1-9]' && return 0
        done
        sleep 0.1
    done
    return 1
}

start_cluster() { # [OPTIONS...] for every member
    local k
    for k in 1 2 3; do start_member "$k" "m$k" "$@" >/dev/null; done
    wait_leader 1 2 3
}

@test "a 3-member cluster over TLS: writes through a mount, reads over TLS, members need their own certificates" {
    start_cluster
    mkdir "$TEST_TMP/mnt1/app"
    echo "postgres://db" >"$TEST_TMP/mnt1/app/db_url"
    [ "$(cat "$TEST_TMP/mnt2/app/db_url")" = "postgres://db" ]
    [ "$(cat "$TEST_TMP/mnt3/app/db_url")" = "postgres://db" ]
    # shellcheck disable=SC2046
    run "$RAFTFS_BIN" get /app/db_url --endpoints "$(ep 3)" $(client_tls)
    assert_success
    assert_output "postgres://db"
    # the variables, as for the endpoints; a CA alone will do (no --client-cert-auth)
    RAFTFS_CACERT=$PKI/ca.crt RAFTFS_ENDPOINTS=$(ep 2) "$RAFTFS_BIN" put /app/mode green
    [ "$(cat "$TEST_TMP/mnt1/app/mode")" = green ]
    run env RAFTFS_CACERT="$PKI/ca.crt" RAFTFS_CERT="$PKI/client.crt" RAFTFS_KEY="$PKI/client.key" \
        "$RAFTFS_BIN" member list --endpoints "$(ep 1)"
    assert_success
    [ "${#lines[@]}" = 3 ]
    # the members found each other over TLS
    grep -q "connected to member" "$TEST_TMP/data1/raftfs.log"
    # a member's Hello needs a verified certificate, even where clients
    # need none: without one it is refused; with one of the CA it passes
    cluster=$("$RAFTFS_BIN" status --endpoints "$(ep 1)" --cacert "$PKI/ca.crt" |
        sed -E 's/.*"cluster_id": "([0-9a-f]+)".*/\1/')
    run "$WIRETEST_BIN" peer-hello "$(ep 1)" "$cluster" 2 "$PKI/ca.crt"
    assert_failure 1
    assert_output --partial "refused: member 2 showed no certificate: members must (mutual TLS"
    grep -q "connection from 127.0.0.1:[0-9]* refused: member 2 showed no certificate" \
        "$TEST_TMP/data1/raftfs.log"
    # nor with one of the CA that does not name member 2's host: a client's,
    # or a member's made for another address
    for c in client elsewhere; do
        run "$WIRETEST_BIN" peer-hello "$(ep 1)" "$cluster" 2 "$PKI/ca.crt" "$PKI/$c.crt" "$PKI/$c.key"
        assert_failure 1
        # the peer is not told the host; the member's log says it
        assert_output --partial "refused: member 2 showed a certificate that does not name its host in the member directory"
        refute_output --partial "127.0.0.1"
    done
    grep -q "connection from 127.0.0.1:[0-9]* refused: member 2 showed a certificate that does not name 127.0.0.1, its host" \
        "$TEST_TMP/data1/raftfs.log"
    # nor with a client certificate that names its host
    run "$WIRETEST_BIN" peer-hello "$(ep 1)" "$cluster" 2 "$PKI/ca.crt" "$PKI/clienthere.crt" "$PKI/clienthere.key"
    assert_failure 1
    assert_output --partial "refused: member 2 showed a certificate that is not for a server"
    # (then the Hello's other checks: this one lacks member 2's incarnation)
    run "$WIRETEST_BIN" peer-hello "$(ep 1)" "$cluster" 2 "$PKI/ca.crt" "$PKI/m2.crt" "$PKI/m2.key"
    assert_output --partial "refused: member 2 came back with a new data directory"
    refute_output --partial "certificate"
    [ "$(cat "$TEST_TMP/mnt3/app/mode")" = green ]
}

@test "a member whose certificate another CA signed is refused at the handshake; the cluster's data is unchanged" {
    start_cluster
    echo before >"$TEST_TMP/mnt1/k"
    # member 3 holds it before it is restarted, cut off, below (once, in the
    # sanitizer run of CI, it did not yet, and answered ENOENT there)
    for i in $(seq 1 100); do
        # shellcheck disable=SC2046
        [ "$("$RAFTFS_BIN" get /k --serializable --endpoints "$(ep 3)" $(client_tls) 2>/dev/null)" = before ] && break
        sleep 0.05
    done
    # shellcheck disable=SC2046
    members=$("$RAFTFS_BIN" member list --endpoints "$(ep 1)" $(client_tls) | cut -d' ' -f1,2)
    # a new member with such a certificate cannot join
    mkdir -p "$TEST_TMP/mnt4"
    # shellcheck disable=SC2046
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt4" --data "$TEST_TMP/data4" --id 4 --listen "$(ep 4)" \
        --join "$(ep 1)" $(tls_files stranger) 3>&- </dev/null
    assert_failure
    assert_output --partial "cannot join through $(ep 1)"
    assert_output --partial "TLS"
    refute mountpoint -q "$TEST_TMP/mnt4"
    # once: the refusal is final, the joiner does not try again until its
    # timeout (it did, for 10 s)
    run grep -Ec "connection from 127.0.0.1:[0-9]+ refused: TLS handshake failed: certificate verify failed" \
        "$TEST_TMP/data1/raftfs.log"
    assert_output 1
    # a founding member restarted with one takes no part: its peers refuse
    # it both ways, and a write goes on without it
    stop_member 3
    start_member 3 stranger >/dev/null
    for i in $(seq 1 50); do
        grep -q "connection to member 3 at $(ep 3) refused: TLS handshake failed: certificate verify failed" \
            "$TEST_TMP/data1/raftfs.log" && break
        sleep 0.1
    done
    grep -q "connection to member 3 at $(ep 3) refused: TLS handshake failed: certificate verify failed" \
        "$TEST_TMP/data1/raftfs.log"
    # (member 3 dials member 2 on its own schedule: wait for that too)
    for i in $(seq 1 50); do
        grep -Eq "connection from 127.0.0.1:[0-9]+ refused: TLS handshake failed: certificate verify failed" \
            "$TEST_TMP/data2/raftfs.log" && break
        sleep 0.1
    done
    grep -Eq "connection from 127.0.0.1:[0-9]+ refused: TLS handshake failed: certificate verify failed" \
        "$TEST_TMP/data2/raftfs.log"
    echo after >"$TEST_TMP/mnt2/k"
    [ "$(cat "$TEST_TMP/mnt1/k")" = after ]
    # member 3 (reached with its own CA) never got it
    run "$RAFTFS_BIN" get /k --serializable --endpoints "$(ep 3)" --cacert "$PKI/other.crt" --timeout 2
    assert_success
    assert_output before
    # shellcheck disable=SC2046
    # (ids and addresses: which one leads may change when member 3 restarts)
    [ "$("$RAFTFS_BIN" member list --endpoints "$(ep 1)" $(client_tls) | cut -d' ' -f1,2)" = "$members" ]
}

@test "--client-cert-auth: a client without a certificate is refused, and let in without the option" {
    mkdir -p "$TEST_TMP/mnt1"
    # shellcheck disable=SC2046
    "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --listen "$(ep 1)" \
        $(tls_files m1) --client-cert-auth 3>&- </dev/null
    echo v >"$TEST_TMP/mnt1/k"
    run "$RAFTFS_BIN" get /k --endpoints "$(ep 1)" --cacert "$PKI/ca.crt" --timeout 1
    assert_failure 1
    assert_output --partial "certificate required"
    assert_output --partial "--cert and --key"
    grep -Eq "connection from 127.0.0.1:[0-9]+ refused: TLS handshake failed: peer did not return a certificate" \
        "$TEST_TMP/data1/raftfs.log"
    # shellcheck disable=SC2046
    run "$RAFTFS_BIN" get /k --endpoints "$(ep 1)" $(client_tls)
    assert_success
    assert_output v
    stop_member 1
    # shellcheck disable=SC2046
    "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --listen "$(ep 1)" \
        $(tls_files m1) 3>&- </dev/null
    run "$RAFTFS_BIN" get /k --endpoints "$(ep 1)" --cacert "$PKI/ca.crt"
    assert_success
    assert_output v
    # a certificate shown is still verified: another CA's is refused
    run "$RAFTFS_BIN" get /k --endpoints "$(ep 1)" --cacert "$PKI/ca.crt" \
        --cert "$PKI/stranger.crt" --key "$PKI/stranger.key" --timeout 1
    assert_failure 1
    assert_output --partial "TLS"
}

@test "a plaintext client against a TLS member fails clearly, and a TLS client against a plaintext one" {
    mkdir -p "$TEST_TMP/mnt1" "$TEST_TMP/mnt2"
    # shellcheck disable=SC2046
    "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --listen "$(ep 1)" \
        $(tls_files m1) 3>&- </dev/null
    run "$RAFTFS_BIN" status --endpoints "$(ep 1)" --timeout 1
    assert_failure 1
    assert_output --partial "if the member uses TLS, give its CA with --cacert FILE"
    grep -Eq "connection from 127.0.0.1:[0-9]+ refused: TLS handshake failed: .*\(not TLS: a plaintext client\?\)" \
        "$TEST_TMP/data1/raftfs.log"
    "$RAFTFS_BIN" mount "$TEST_TMP/mnt2" --data "$TEST_TMP/data2" --listen "$(ep 2)" 3>&- </dev/null
    run "$RAFTFS_BIN" status --endpoints "$(ep 2)" --cacert "$PKI/ca.crt" --timeout 1
    assert_failure 1
    assert_output --partial "TLS handshake failed"
    # a client that cannot verify the member (another CA) gives up after
    # one handshake per endpoint, not at its --timeout: the member saw one
    before=$(grep -c "refused: TLS handshake failed" "$TEST_TMP/data1/raftfs.log")
    run "$RAFTFS_BIN" get /k --endpoints "$(ep 1)" --cacert "$PKI/other.crt" --timeout 30
    assert_failure 1
    assert_output --partial "certificate verify failed"
    after=$(grep -c "refused: TLS handshake failed" "$TEST_TMP/data1/raftfs.log")
    [ "$after" -eq $((before + 1)) ]
}

@test "a key file its group or others may read is refused, for a member and for a client" {
    chmod 640 "$PKI/m1.key"
    mkdir -p "$TEST_TMP/mnt1"
    # shellcheck disable=SC2046
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --listen "$(ep 1)" \
        $(tls_files m1) 3>&- </dev/null
    assert_failure 1
    assert_output --partial "key file $PKI/m1.key is accessible by its group (mode 0640)"
    assert_output --partial "chmod 600"
    refute mountpoint -q "$TEST_TMP/mnt1"
    [ ! -e "$TEST_TMP/data1" ] # refused before anything was made
    chmod 604 "$PKI/m1.key"
    # shellcheck disable=SC2046
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --listen "$(ep 1)" \
        $(tls_files m1) 3>&- </dev/null
    assert_failure 1
    assert_output --partial "is accessible by others"
    chmod 640 "$PKI/client.key"
    # shellcheck disable=SC2046
    run "$RAFTFS_BIN" get /k --endpoints "$(ep 1)" $(client_tls)
    assert_failure
    assert_output --partial "key file $PKI/client.key is accessible by its group"
}

@test "plaintext off loopback is refused at start" {
    mkdir -p "$TEST_TMP/mnt1"
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --listen "0.0.0.0:$((BASE + 1))" \
        3>&- </dev/null
    assert_failure 1
    assert_output --partial "refusing to serve 0.0.0.0:$((BASE + 1)) in plaintext: it is not a loopback address"
    assert_output --partial "--allow-plaintext"
    refute mountpoint -q "$TEST_TMP/mnt1"
    [ ! -e "$TEST_TMP/data1" ] # refused before anything was made
    # a peer elsewhere: refused before anything is dialed (192.0.2.1 is TEST-NET-1)
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --id 1 \
        --peers "1=$(ep 1),2=192.0.2.1:$((BASE + 2))" 3>&- </dev/null
    assert_failure 1
    assert_output --partial "refusing to talk to a peer at 192.0.2.1:$((BASE + 2)) in plaintext"
    refute mountpoint -q "$TEST_TMP/mnt1"
    # a running plaintext member does not add one there either (nothing is
    # dialed: 192.0.2.1 is only a name here)
    "$RAFTFS_BIN" mount "$TEST_TMP/mnt1" --data "$TEST_TMP/data1" --listen "$(ep 1)" 3>&- </dev/null
    for add in add add-learner; do
        run "$RAFTFS_BIN" member "$add" 2 "192.0.2.1:$((BASE + 2))" --endpoints "$(ep 1)"
        assert_failure 1
        assert_output --partial "members off loopback need TLS (or --allow-plaintext)"
    done
    grep -q "refusing to add member 2 at 192.0.2.1:$((BASE + 2)): this member speaks plaintext" \
        "$TEST_TMP/data1/raftfs.log"
    run "$RAFTFS_BIN" member list --endpoints "$(ep 1)"
    [ "${#lines[@]}" -eq 1 ]
}

@test "access control: a client certificate's common name is its user" {
    (
        cd "$PKI"
        for n in alice mallory; do
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$n.key" &&
                openssl req -new -key "$n.key" -out "$n.csr" -subj "/CN=$n" &&
                printf 'extendedKeyUsage=clientAuth\n' >"$n.ext" &&
                openssl x509 -req -in "$n.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
                    -extfile "$n.ext" -out "$n.crt" && chmod 600 "$n.key"
        done
    ) >/dev/null 2>&1
    start_cluster
    as() { # CERTNAME ARGS...: a client showing that certificate
        local n=$1
        shift
        "$RAFTFS_BIN" "$@" --endpoints "$(ep 1)" --cacert "$PKI/ca.crt" --cert "$PKI/$n.crt" \
            --key "$PKI/$n.key"
    }
    echo root-pw | as client user add root
    as client user add alice --no-password
    as client role add app
    as client role grant app readwrite /app
    as client user grant-role alice app
    as client mkdir /app
    as client put /secret s
    as client auth enable --user root:root-pw
    run as alice auth whoami
    assert_output alice
    as alice put /app/k v
    [ "$(cat "$TEST_TMP/mnt2/app/k")" = v ]
    run as alice get /secret
    [ "$status" -eq 1 ]
    assert_output --partial "Permission denied"
    # no user of that name: as good as anonymous
    run as mallory get /app/k
    [ "$status" -eq 1 ]
    assert_output --partial "Operation not permitted"
    # a password login wins over the certificate's name
    run as alice auth whoami --user root:root-pw
    assert_output root
    # a user without a password cannot log in with one
    run as mallory get /app/k --user alice:guess
    assert_output --partial "authentication failed"
}
