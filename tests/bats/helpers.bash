# helpers.bash - set-up and clean-up shared by the bats suites.
#
# Every test gets its own temp dir with a mountpoint and a data dir; the
# teardown unmounts, waits for the server to exit (killing it if it will
# not) and removes the dir only once nothing is mounted there, also when
# the test failed.
bats_load_library bats-support
bats_load_library bats-assert

: "${RAFTFS_BIN:?RAFTFS_BIN must name the raftfs binary (tests/run-all.sh sets it)}"
: "${FSTEST_BIN:?FSTEST_BIN must name the fstest helper (tests/run-all.sh sets it)}"
WIRETEST_BIN=${WIRETEST_BIN:-$(dirname "$FSTEST_BIN")/wiretest}
# Debian's python3 (scripts/deps.sh installs it), not the first python3 on
# PATH: a version manager's shim there took 0.3 s to start (against 0.04 s),
# and some tests start python dozens of times.
export PYTHON3=${PYTHON3:-/usr/bin/python3} # also for scripts tests write

common_setup() {
    TEST_TMP=$(mktemp -d /tmp/raftfs-bats.XXXXXX)
    MNT=$TEST_TMP/mnt
    DATA=$TEST_TMP/data
    mkdir "$MNT"
}

# raftfs_start [OPTIONS...]: mounts DATA at MNT in the background.
raftfs_start() {
    "$RAFTFS_BIN" mount "$MNT" --data "$DATA" "$@" 3>&- </dev/null
}

# server_pid: the pid holding DATA (from its lock file), or nothing.
server_pid() {
    local pid
    pid=$(cat "$DATA/raftfs.lock" 2>/dev/null) || return 0
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

# wait_gone PID [SECONDS]: waits for a process to exit.
wait_gone() {
    local pid=$1 tries=$(( ${2:-10} * 10 ))
    while kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" 2>/dev/null | cut -c1)" != Z ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || return 1
        sleep 0.1
    done
}

# in_mountinfo PATH: is anything mounted at PATH? Not mountpoint(1): its
# stat fails on a dead FUSE mount (ENOTCONN) as on no mount at all.
in_mountinfo() {
    grep -q " $1 " /proc/self/mountinfo
}

# raftfs_stop: unmounts MNT and waits for the server to exit.
raftfs_stop() {
    local pid
    pid=$(server_pid)
    if mountpoint -q "$MNT" 2>/dev/null || ! stat "$MNT" >/dev/null 2>&1; then
        fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true
    fi
    if [ -n "$pid" ] && ! wait_gone "$pid" 10; then
        kill -9 "$pid" 2>/dev/null || true
        wait_gone "$pid" 5 || true
    fi
}

# test_port_base: a random base for the ports of one test (base+1 ..
# base+19), below the kernel's ephemeral range: a port in that range may be
# held by any outgoing connection, and then cannot be listened on. Suites
# that run at once (tests/run-all.sh: RAFTFS_TEST_PORT_SLOTS=N and each its
# own RAFTFS_TEST_PORT_SLOT=0..N-1) draw from separate parts of the range,
# so that they never pick the same ports.
test_port_base() {
    local lo
    lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null) || lo=32768
    [ "$lo" -gt 12000 ] || lo=32768 # an unusual range: stay in the default's gap
    local slots=${RAFTFS_TEST_PORT_SLOTS:-1} slot=${RAFTFS_TEST_PORT_SLOT:-0}
    local per=$(( ((lo - 10000) / 20 - 1) / slots ))
    echo $((10000 + (slot * per + RANDOM % per) * 20))
}

# show_logs FILE...: after a failed test, the end of each server log (bats
# prints a teardown's output only when the test failed).
show_logs() {
    [ -n "${BATS_TEST_COMPLETED:-}" ] && return 0
    local f
    for f in "$@"; do
        [ -f "$f" ] || continue
        echo "# --- last lines of $f"
        tail -n ${SHOW_LOG_LINES:-25} "$f" | sed 's/^/# /'
    done
}

# sanitizer_findings FILE...: fails, quoting them, if server logs hold
# sanitizer reports (UBSan writes to stderr only: tests/run-all.sh).
sanitizer_findings() {
    local found
    found=$(grep -h -A12 -E "runtime error:|ERROR: (Address|Leak)Sanitizer" "$@" 2>/dev/null) || return 0
    echo "# sanitizer report in a server log:"
    echo "$found" | sed 's/^/# /'
    return 1
}

common_teardown() {
    show_logs "$DATA/raftfs.log"
    raftfs_stop
    local san=0
    sanitizer_findings "$DATA/raftfs.log" || san=1
    # Never delete through a live mount.
    if [ -n "${TEST_TMP:-}" ] && ! mountpoint -q "$MNT" 2>/dev/null; then
        rm -rf "$TEST_TMP"
    fi
    return $san
}
