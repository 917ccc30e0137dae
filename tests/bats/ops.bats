#!/usr/bin/env bats
# Operations: the --metrics-addr HTTP endpoints (/metrics as Prometheus
# text, /health going 503 when the majority is lost), the strict checker
# the metrics are held to, structured log lines, values never logged, and
# the systemd units of examples/systemd.

load helpers
load cluster_helpers

PROMCHECK="$BATS_TEST_DIRNAME/promcheck.py"

setup() {
    CL=
    UNIT_MNTS=
    UNIT_PIDS=
}

teardown() {
    local m p
    for m in ${UNIT_MNTS:-}; do # the systemd test's mounts and servers
        fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null || true
    done
    for p in ${UNIT_PIDS:-}; do
        wait_gone "$p" 10 || kill -9 "$p" 2>/dev/null || true
    done
    if [ -n "$CL" ]; then
        cluster_teardown
    elif [ -n "${TEST_TMP:-}" ]; then
        common_teardown
    fi
}

# get URL OUT: fetches URL into OUT; prints "STATUS CONTENT-TYPE".
get() {
    curl -s --max-time 5 -o "$2" -w '%{http_code} %{content_type}' "$1"
}

# values_stripped FILE: the text with each sample's value taken off (two
# renderings differ in their counters, not in their series).
values_stripped() {
    sed -E '/^#/!s/ [^ ]+$//' "$1"
}

@test "--metrics-addr serves /metrics as .raftfs/metrics does, /health, 404 and 405" {
    common_setup
    local port=$(( $(test_port_base) + 1 ))
    local url=http://127.0.0.1:$port
    raftfs_start --metrics-addr "127.0.0.1:$port"
    echo v > "$MNT/k"

    run get "$url/metrics" "$TEST_TMP/m.txt"
    assert_output "200 text/plain; version=0.0.4; charset=utf-8"
    "$PYTHON3" "$PROMCHECK" "$TEST_TMP/m.txt"
    grep -q '^raftfs_member_id 1$' "$TEST_TMP/m.txt"
    grep -q '^raftfs_is_leader 1$' "$TEST_TMP/m.txt"
    grep -q '^raftfs_kernel_inodes ' "$TEST_TMP/m.txt" # the mount's part too
    cp "$MNT/.raftfs/metrics" "$TEST_TMP/ctl.txt"
    diff <(values_stripped "$TEST_TMP/m.txt") <(values_stripped "$TEST_TMP/ctl.txt")

    run get "$url/health" "$TEST_TMP/h.json"
    assert_output "200 application/json"
    run cat "$TEST_TMP/h.json"
    assert_output --regexp '^\{"health":"true","reason":"","member":1,"term":[1-9][0-9]*,"leader":1\}$'

    run get "$url/nothing" "$TEST_TMP/x"
    assert_output --regexp '^404 '
    run get "$url/metrics/" "$TEST_TMP/x"
    assert_output --regexp '^404 '
    run curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X POST -d x "$url/metrics"
    assert_output 405
    run curl -s --max-time 5 -o /dev/null -w '%{http_code}' -X DELETE "$url/health"
    assert_output 405
    run curl -s --max-time 5 -I "$url/health"
    assert_output --partial "HTTP/1.1 200"
}

@test "a busy or bad --metrics-addr refuses the mount; the port is free after unmount" {
    common_setup
    local port=$(( $(test_port_base) + 1 ))
    raftfs_start --metrics-addr "127.0.0.1:$port"
    mkdir "$TEST_TMP/mnt2"
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt2" --data "$TEST_TMP/data2" --metrics-addr "127.0.0.1:$port" 3>&- </dev/null
    assert_failure 1
    assert_output --partial "--metrics-addr: cannot listen on 127.0.0.1:$port: Address already in use"
    refute mountpoint -q "$TEST_TMP/mnt2"
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt2" --data "$TEST_TMP/data2" --metrics-addr nowhere 3>&- </dev/null
    assert_failure 2
    assert_output --partial "bad --metrics-addr 'nowhere'"
    run "$RAFTFS_BIN" mount "$TEST_TMP/mnt2" --data "$TEST_TMP/data2" --metrics-addr 127.0.0.1:70000 3>&- </dev/null
    assert_failure 2

    raftfs_stop
    run curl -s --max-time 5 "http://127.0.0.1:$port/health"
    assert_failure 7 # connection refused: nothing listens any more
    # and it can be had again at once
    raftfs_start --metrics-addr "127.0.0.1:$port"
    run get "http://127.0.0.1:$port/health" "$TEST_TMP/h.json"
    assert_output "200 application/json"
}

@test "/health of a 3-member cluster: 200 on every member, 503 once the majority is lost" {
    cluster_setup
    export RAFTFS_METRICS_BASE_PORT=$((RAFTFS_BASE_PORT + 4))
    cluster_start
    local k i code
    for k in 1 2 3; do
        for i in $(seq 1 50); do
            code=$(get "http://127.0.0.1:$((RAFTFS_METRICS_BASE_PORT + k))/health" "$TEST_TMP/h$k.json" | cut -d' ' -f1)
            [ "$code" = 200 ] && break
            sleep 0.1
        done
        [ "$code" = 200 ] || { cat "$TEST_TMP/h$k.json"; false; }
        grep -q "\"member\":$k," "$TEST_TMP/h$k.json"
        get "http://127.0.0.1:$((RAFTFS_METRICS_BASE_PORT + k))/metrics" "$TEST_TMP/m$k.txt"
        "$PYTHON3" "$PROMCHECK" "$TEST_TMP/m$k.txt"
    done

    "$LC" kill "$CL" 2
    "$LC" kill "$CL" 3
    for i in $(seq 1 100); do
        code=$(get "http://127.0.0.1:$((RAFTFS_METRICS_BASE_PORT + 1))/health" "$TEST_TMP/h1.json" | cut -d' ' -f1)
        [ "$code" = 503 ] && break
        sleep 0.1
    done
    cat "$TEST_TMP/h1.json"
    [ "$code" = 503 ]
    run cat "$TEST_TMP/h1.json"
    assert_output --regexp '^\{"health":"false","reason":"(no leader|leader [0-9]+ not heard from for [0-9.]+ s)","member":1,'
    # the metrics still answer in a minority
    run get "http://127.0.0.1:$((RAFTFS_METRICS_BASE_PORT + 1))/metrics" "$TEST_TMP/m1.txt"
    assert_output --regexp '^200 '
    grep -q '^raftfs_is_leader 0$' "$TEST_TMP/m1.txt"

    # and healthy again once a majority is back
    "$LC" restart "$CL" 2
    for i in $(seq 1 100); do
        code=$(get "http://127.0.0.1:$((RAFTFS_METRICS_BASE_PORT + 1))/health" "$TEST_TMP/h1.json" | cut -d' ' -f1)
        [ "$code" = 200 ] && break
        sleep 0.1
    done
    [ "$code" = 200 ]
}

@test "the metrics checker rejects malformed expositions" {
    TEST_TMP=$(mktemp -d /tmp/raftfs-bats.XXXXXX)
    local good=$TEST_TMP/good.txt
    cat > "$good" <<'TXT'
# HELP raftfs_term The current Raft term.
# TYPE raftfs_term gauge
raftfs_term 3
# HELP raftfs_x_seconds A histogram.
# TYPE raftfs_x_seconds histogram
raftfs_x_seconds_bucket{le="0.1"} 1
raftfs_x_seconds_bucket{le="+Inf"} 2
raftfs_x_seconds_sum 0.250000
raftfs_x_seconds_count 2
# HELP raftfs_l_total With labels.
# TYPE raftfs_l_total counter
raftfs_l_total{a="x",b="q\"\\\n"} 1
raftfs_l_total{a="y",b="z"} 2 1700000000000
TXT
    "$PYTHON3" "$PROMCHECK" "$good"
    # bad: each line replaced, or added, in turn
    check_bad() { # SED-SCRIPT WHAT
        sed -e "$1" "$good" > "$TEST_TMP/bad.txt"
        run "$PYTHON3" "$PROMCHECK" "$TEST_TMP/bad.txt"
        [ "$status" = 1 ] || { echo "accepted: $2"; cat "$TEST_TMP/bad.txt"; false; }
        [ -n "$output" ]
    }
    check_bad '2d' "no TYPE"
    check_bad '1d' "no HELP"
    check_bad '3s/.*/raftfs_term three/' "a value that is not a number"
    check_bad '3s/.*/raftfs_term 3 4 5/' "too many fields"
    check_bad '3s/.*/raftfs_term3/' "no space before the value"
    check_bad '3a raftfs_term 4' "a duplicate series"
    check_bad '13a raftfs_l_total{b="z",a="y"} 3' "a duplicate labelled series (labels in another order)"
    check_bad '12s/.*/raftfs_l_total{a=x} 1/' "an unquoted label value"
    check_bad '12s/.*/raftfs_l_total{a="x",} 1/' "a trailing comma"
    check_bad '12s/.*/raftfs_l_total{a="x",a="y"} 1/' "a label twice"
    check_bad '12s/.*/raftfs_l_total{1a="x"} 1/' "a bad label name"
    check_bad '12s/.*/raftfs_l_total{a="x\\q"} 1/' "a bad escape"
    check_bad '12s/.*/raftfs_l_total{a="x" 1/' "unclosed labels"
    check_bad '12s/.*/raftfs_l_total -1/' "a negative counter"
    check_bad '2s/.*/# TYPE raftfs_term meter/' "an unknown type"
    check_bad '3a # TYPE raftfs_term gauge' "TYPE after the samples"
    check_bad '2a # TYPE raftfs_term gauge' "TYPE twice"
    check_bad '13a raftfs_term 5' "a family's samples apart"
    check_bad '7d' "a histogram without +Inf"
    check_bad '7s/2$/0/' "bucket counts decreasing"
    check_bad '9s/2$/3/' "_count unlike the +Inf bucket"
    check_bad '6s/le/lx/' "a bucket without le"
    check_bad '3s/.*/9raftfs_term 3/' "a bad metric name"
    printf 'raftfs_term 3' > "$TEST_TMP/bad.txt"
    run "$PYTHON3" "$PROMCHECK" "$TEST_TMP/bad.txt"
    assert_failure 1
    rm -rf "$TEST_TMP"
    TEST_TMP=
}

# LOGFMT: one log line as node_log writes it (node/node_log.c).
LOGFMT='^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z level=(error|warn|info|debug) member=[0-9]+( term=[0-9]+)? msg="([^"\\]|\\.)*"$'

@test "log lines are logfmt: ts, level, member, term once known, one quoted msg" {
    common_setup
    # a mountpoint whose name needs escaping inside msg="..."
    MNT="$TEST_TMP/m \"q\" \\b"
    mkdir "$MNT"
    raftfs_start --id 3 --log-level debug
    echo v > "$MNT/k"
    cat "$MNT/k" >/dev/null
    raftfs_stop
    local log=$DATA/raftfs.log
    [ "$(wc -l < "$log")" -gt 5 ]
    run grep -Ev "$LOGFMT" "$log"
    [ "$status" = 1 ] || { echo "lines not in the format:"; echo "$output"; false; }
    # every line is member 3's; all but Raft's creation carry the term
    [ "$(grep -c ' member=3 ' "$log")" = "$(wc -l < "$log")" ]
    run grep -v ' term=[0-9]' "$log"
    refute_output --partial 'level=info'
    grep -q '^ts=.* level=info member=3 term=2 msg="member 3 is the leader of term 2 (this member)"$' "$log"
    grep -q 'level=debug member=3 term=2 msg="raft: n3 t2 L ' "$log"
    grep -qF 'msg="mounted at '"$TEST_TMP"'/m \"q\" \\b"' "$log"
    grep -q 'level=info member=3 term=2 msg="stopped"$' "$log"
}

@test "--log-syslog sends every line to syslog(3), daemon facility, and none to the log file" {
    common_setup
    run "$RAFTFS_BIN" mount "$MNT" --data "$DATA" --log-syslog --log-file "$TEST_TMP/x.log" 3>&- </dev/null
    assert_failure 2
    assert_output --partial "--log-syslog and --log-file exclude each other"
    # syslog(3) writes to /dev/log: in a mount namespace of its own, the
    # test puts a listener there (a tmpfs over /dev, once the member is
    # mounted) and leaves the machine's /dev alone.
    unshare -m --propagation private true 2>/dev/null || skip "needs unshare -m (root)"
    cat > "$TEST_TMP/ns.sh" <<'SH'
set -eu
T=$1 BIN=$2 MNT=$3 DATA=$4
mkdir "$T/newdev"
mount -t tmpfs tmpfs "$T/newdev"
"$PYTHON3" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2] + ".ready", "w").close()
s.settimeout(5)
with open(sys.argv[2], "ab") as f:
    while True:
        try:
            d = s.recv(65536)
        except socket.timeout:
            break
        f.write(d + b"\n")
        f.flush()
' "$T/newdev/log" "$T/syslog.txt" &
listener=$!
stop() { fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 50); do [ -e "$T/syslog.txt.ready" ] && break; sleep 0.1; done
"$BIN" mount "$MNT" --data "$DATA" --id 4 --log-syslog 3>&- </dev/null >/dev/null
mount --bind "$T/newdev" /dev
echo v > "$MNT/k"
cat "$MNT/k" >/dev/null
stop
wait "$listener"
SH
    timeout 60 unshare -m --propagation private bash "$TEST_TMP/ns.sh" "$TEST_TMP" "$RAFTFS_BIN" "$MNT" "$DATA"
    cat "$TEST_TMP/syslog.txt"
    # <30>: facility daemon (3 * 8), severity info (6); the line without ts
    # (lines before /dev changed had no listener: only later ones are there)
    grep -Eq '^<30>.* raftfs\[[0-9]+\]: level=info member=4 term=2 msg="unmounting [^"]*/mnt"$' "$TEST_TMP/syslog.txt"
    grep -Eq '^<30>.* raftfs\[[0-9]+\]: level=info member=4 term=2 msg="stopped"$' "$TEST_TMP/syslog.txt"
    run grep -c 'level=' "$DATA/raftfs.log"
    assert_output 0
}

@test "no value's bytes reach a member's log, at debug level, by any write path" {
    cluster_setup
    RAFTFS_MOUNT_OPTS="--log-level debug --snapshot-entries 10" cluster_start
    local tok s
    tok=$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')
    s=zq$tok # every value below holds it; no path, id or number does
    export RAFTFS_ENDPOINTS=$(all_eps)
    # through the mounts: a new key, a truncating write on a follower, an
    # append, a read-modify-write, a mv over a key; a value refused (too big)
    echo "mount-$s" > "$CL/mnt/1/a"
    echo "follower-$s" > "$CL/mnt/2/b"
    echo "append-$s" >> "$CL/mnt/3/a"
    run "$FSTEST_BIN" write-at "$CL/mnt/2/a" 3 "rmw-$s"
    assert_output $'pwrite: OK\nclose: OK'
    echo "tmp-$s" > "$CL/mnt/3/tmp"
    mv "$CL/mnt/3/tmp" "$CL/mnt/3/b"
    { printf 'big-%s' "$s"; head -c 2000000 /dev/zero; } > "$CL/mnt/1/big" 2>/dev/null || true
    # through the client port: put, get, a txn (taken, and refused), a lease
    "$RAFTFS_BIN" put /c "put-$s"
    "$RAFTFS_BIN" get /c > /dev/null
    "$RAFTFS_BIN" txn <<TXN
if value /c == "put-$s"
then put /d "txn-$s"
then append /d "txnappend-$s"
TXN
    run "$RAFTFS_BIN" txn <<TXN
if value /c != "cmp-$s"
then put /e "fail-$s"
then put /no/such/dir "fail2-$s"
TXN
    [ "$status" = 1 ]
    lease=$("$RAFTFS_BIN" lease grant 1m)
    "$RAFTFS_BIN" put /leased "lease-$s" --lease "$lease"
    # an import (a tar) and an export
    mkdir -p "$TEST_TMP/imp/sub"
    echo "import-$s" > "$TEST_TMP/imp/sub/f"
    tar -C "$TEST_TMP/imp" -cf "$TEST_TMP/imp.tar" .
    "$RAFTFS_BIN" import "$TEST_TMP/imp.tar" --format tar --to /imported
    "$RAFTFS_BIN" export / > "$TEST_TMP/export.json"
    grep -q "import-$s" "$TEST_TMP/export.json" # the values are there...
    # enough writes for snapshots (sent to a member that was away)
    "$LC" kill "$CL" 3
    for i in $(seq 1 30); do echo "many-$i-$s" > "$CL/mnt/1/m$i"; done
    "$LC" restart "$CL" 3
    for i in $(seq 1 100); do
        [ "$(cat "$CL/mnt/3/m30" 2>/dev/null)" = "many-30-$s" ] && break
        sleep 0.1
    done
    [ "$(cat "$CL/mnt/3/m30")" = "many-30-$s" ]
    [ "$(cat "$CL/mnt/2/imported/sub/f")" = "import-$s" ]
    # ... and in no log, also with the debug lines
    local k n
    for k in 1 2 3; do
        n=$(grep -c 'level=debug' "$CL/data/$k/raftfs.log")
        [ "$n" -gt 0 ]
        if grep -n "$tok" "$CL/data/$k/raftfs.log"; then
            echo "member $k logged a value"
            false
        fi
    done
}

# unit_command UNIT KEY NAME: the unit's KEY= command line for instance NAME,
# as words (one a line), expanded as systemd does with the variables of
# the environment: %i is NAME, ${VAR} one word, $VAR split at spaces; the
# paths moved under TEST_TMP and the binary to RAFTFS_BIN.
unit_command() {
    local line
    line=$(sed -n "s/^$2=-\{0,1\}//p" "$UNITS/$1")
    line=${line//%i/$3}
    line=${line//\/usr\/local\/bin\/raftfs/$RAFTFS_BIN}
    line=${line//\/mnt\/raftfs/$TEST_TMP\/mnt}
    line=${line//\/var\/lib\/raftfs/$TEST_TMP\/lib}
    eval "set -- $line"
    printf '%s\n' "$@"
}

# load_env FILE: exports its VAR=value lines (systemd's EnvironmentFile),
# with the example's addresses moved to this test's loopback ports.
load_env() {
    local line
    while IFS= read -r line; do
        case $line in '#'* | '') continue ;; esac
        line=$(echo "$line" | sed -E "s/10\.0\.0\.([0-9]):7401/127.0.0.1:$PB\1/g; s/127\.0\.0\.1:9401/127.0.0.1:${PB}9/")
        export "${line%%=*}=${line#*=}"
    done < "$1"
}

@test "examples/systemd: the units verify, and their ExecStart/ExecStop run a cluster and a learner" {
    common_setup
    UNITS=$TEST_TMP/units
    mkdir -p "$UNITS" "$TEST_TMP/mnt" "$TEST_TMP/lib"
    local src=$BATS_TEST_DIRNAME/../../examples/systemd
    sed "s|/usr/local/bin/raftfs|$RAFTFS_BIN|" "$src/raftfs-member@.service" > "$UNITS/raftfs-member@.service"
    sed "s|/usr/local/bin/raftfs|$RAFTFS_BIN|" "$src/raftfs-learner-mount@.service" > "$UNITS/raftfs-learner-mount@.service"
    if command -v systemd-analyze >/dev/null; then
        run env SYSTEMD_UNIT_PATH="$UNITS:" systemd-analyze verify \
            raftfs-member@one.service raftfs-learner-mount@two.service
        assert_success
        assert_output "" # no warning either (unknown keys, bad values)
        # and it does notice a broken unit
        sed 's/^Restart=on-failure/Restart=sometimes/' "$UNITS/raftfs-member@.service" > "$UNITS/broken@.service"
        run env SYSTEMD_UNIT_PATH="$UNITS:" systemd-analyze verify broken@one.service
        assert_output --partial "restart specifier"
        rm "$UNITS/broken@.service"
    else
        echo "# no systemd-analyze: units not verified" >&3
    fi
    # the units as systemd runs them (without systemd): three founders from
    # member.env.example (with --id 2 and 3 for the others), members 1 and
    # 2 with a notify socket, then a learner from learner.env.example
    PB=$(( $(test_port_base) / 10 )) # ports PB1..PB4, metrics PB9
    "$PYTHON3" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "ab") as f:
    while True:
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        f.write(d.replace(b"\n", b" ") + b"\n")
        f.flush()
' "$TEST_TMP/notify" "$TEST_TMP/notify.txt" &
    local listener=$! k name words
    UNIT_PIDS=$listener
    for i in $(seq 1 50); do [ -S "$TEST_TMP/notify" ] && break; sleep 0.1; done
    for k in 1 2 3; do
        name=m$k
        load_env "$src/member.env.example"
        RAFTFS_OPTS=${RAFTFS_OPTS/--id 1/--id $k}
        RAFTFS_OPTS=${RAFTFS_OPTS/--metrics-addr 127.0.0.1:${PB}9/--metrics-addr 127.0.0.1:${PB}$((k + 4))}
        mapfile -t words < <(unit_command raftfs-member@.service ExecStartPre "$name")
        [ "${words[*]}" = "/bin/mkdir -p $TEST_TMP/lib $TEST_TMP/mnt/$name" ]
        "${words[@]}"
        mapfile -t words < <(unit_command raftfs-member@.service ExecStart "$name")
        [ "${words[0]}" = "$RAFTFS_BIN" ]
        [ "${words[3]}" = --data ] && [ "${words[5]}" = --foreground ]
        UNIT_MNTS="$UNIT_MNTS $TEST_TMP/mnt/$name"
        if [ "$k" -lt 3 ]; then
            NOTIFY_SOCKET=$TEST_TMP/notify "${words[@]}" 2>"$TEST_TMP/$name.log" 3>&- &
        else
            "${words[@]}" 2>"$TEST_TMP/$name.log" 3>&- &
        fi
        UNIT_PIDS="$UNIT_PIDS $!"
        eval "pid_$k=$!"
    done
    for i in $(seq 1 100); do
        [ "$(grep -c READY=1 "$TEST_TMP/notify.txt" 2>/dev/null)" = 2 ] && break
        sleep 0.1
    done
    cat "$TEST_TMP/notify.txt"
    [ "$(grep -c "READY=1 STATUS=serving $TEST_TMP/lib/m. at $TEST_TMP/mnt/m." "$TEST_TMP/notify.txt")" = 2 ]
    echo hello > "$TEST_TMP/mnt/m1/greeting"
    [ "$(cat "$TEST_TMP/mnt/m2/greeting")" = hello ]
    grep -q '"health":"true"' <(curl -s --max-time 5 "http://127.0.0.1:${PB}5/health")

    load_env "$src/learner.env.example"
    RAFTFS_OPTS=${RAFTFS_OPTS/127.0.0.1:${PB}9/127.0.0.1:${PB}8}
    mapfile -t words < <(unit_command raftfs-learner-mount@.service ExecStartPre l4)
    "${words[@]}"
    mapfile -t words < <(unit_command raftfs-learner-mount@.service ExecStart l4)
    UNIT_MNTS="$UNIT_MNTS $TEST_TMP/mnt/l4"
    "${words[@]}" 2>"$TEST_TMP/l4.log" 3>&- &
    UNIT_PIDS="$UNIT_PIDS $!"
    local pid_4=$!
    for i in $(seq 1 100); do
        [ "$(cat "$TEST_TMP/mnt/l4/greeting" 2>/dev/null)" = hello ] && break
        sleep 0.1
    done
    [ "$(cat "$TEST_TMP/mnt/l4/greeting")" = hello ]
    grep -q '"id": 4, "address": "127.0.0.1:'"${PB}"'4", "role": "learner"' "$TEST_TMP/mnt/m1/.raftfs/status"

    # ExecStop: each server unmounts and exits 0; the notify socket hears
    # STOPPING=1 from the two that have it
    mapfile -t words < <(unit_command raftfs-learner-mount@.service ExecStop l4)
    "${words[@]}"
    for name in m3 m2 m1; do
        mapfile -t words < <(unit_command raftfs-member@.service ExecStop "$name")
        [ "${words[*]}" = "/usr/bin/fusermount3 -u $TEST_TMP/mnt/$name" ]
        "${words[@]}"
    done
    for k in 4 3 2 1; do
        eval "wait \$pid_$k" || { echo "member $k exited $?"; cat "$TEST_TMP"/*.log; false; }
    done
    [ "$(grep -c STOPPING=1 "$TEST_TMP/notify.txt")" = 2 ]
    sanitizer_findings "$TEST_TMP"/m?.log "$TEST_TMP/l4.log" # their stderr: not DATA's log
    kill "$listener" 2>/dev/null || true
    UNIT_MNTS=
    UNIT_PIDS=
}
