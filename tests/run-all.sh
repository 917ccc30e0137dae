#!/usr/bin/env bash
# run-all.sh - every test raftfs has, from a fresh Debian 12 machine:
# installs what is missing, builds the normal and the sanitizer build, runs
# ctest and every bats suite against both, a short chaos run (tests/chaos)
# against the normal build and 10 s of each fuzz target (tests/fuzz), and
# ends with one summary line.
# Exit status 0 only if everything passed and the sanitizers reported nothing.
#
# The steps run in two lanes at once, each in order, and print their
# results in a fixed order at the end:
#   lane 1: the sanitizer build's bats, the normal build's ctest
#   lane 2: the sanitizer build's ctest, the normal build's bats, chaos
# plus the fuzz targets in the background at the lowest priority. Most of
# the bats and chaos time is waiting (elections, timers, the kernel): one
# after the other the steps took 17-20 minutes on two CPUs, over the 15
# the suite may take (docs/testing.md has the figures).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); } # seconds since the start
scripts/deps.sh || exit 1
scripts/build.sh all || exit 1
echo "built in $(elapsed) s"

logdir=$(mktemp -d /tmp/raftfs-tests.XXXXXX)

# Each step writes what it prints to $logdir/NAME.out (ending with when it
# ran, in seconds from the start) and, on the first line of
# $logdir/NAME.res, its summary entry, and on the second 0 (passed) or 1.
result() { # NAME SUMMARY-ENTRY RC
    printf '%s\n%s\n' "$2" "$3" >"$logdir/$1.res"
    echo "  ($1: seconds $4 to $(elapsed) of the run)" >>"$logdir/$1.out"
}

run_ctest() { # BUILD-DIR LABEL [ENV=VALUE...]
    local dir=$1 label=$2 from=$(elapsed)
    shift 2
    local log="$logdir/ctest-$label.log"
    env "$@" ctest --test-dir "$dir" --output-on-failure -j 2 >"$log" 2>&1
    local rc=$?
    local line total pass
    line=$(grep -E '[0-9]+% tests passed' "$log" | tail -1)
    total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
    pass=$(( total - $(echo "$line" | sed -E 's/.*, ([0-9]+) tests failed.*/\1/') ))
    {
        echo "ctest ($label): $line"
        [ $rc -eq 0 ] || cat "$log"
    } >"$logdir/ctest-$label.out"
    result "ctest-$label" "ctest $label $pass/$total" $((rc != 0)) "$from"
}

# The two bats runs never share ports: each draws its bases from its own
# part of the range (test_port_base in tests/bats/helpers.bash).
run_bats() { # BUILD-DIR LABEL SLOT [ENV=VALUE...]
    local dir=$1 label=$2 slot=$3 from=$(elapsed)
    shift 3
    local tap="$logdir/bats-$label.tap"
    env "$@" RAFTFS_TEST_PORT_SLOTS=2 RAFTFS_TEST_PORT_SLOT="$slot" \
        RAFTFS_BIN="$root/$dir/cli/raftfs" FSTEST_BIN="$root/$dir/tests/bats/fstest" \
        bats --tap tests/bats >"$tap" 2>&1
    local rc=$?
    local ok notok bad=0
    ok=$(grep -c '^ok ' "$tap")
    notok=$(grep -c '^not ok ' "$tap")
    [ $rc -eq 0 ] && [ "$notok" -eq 0 ] || bad=1
    {
        echo "bats ($label): $ok passed, $notok failed"
        [ $bad -eq 0 ] || grep -v '^ok ' "$tap"
    } >"$logdir/bats-$label.out"
    result "bats-$label" "bats $label $ok/$((ok + notok))" $bad "$from"
}

# A real cluster under every kind of fault (tests/chaos/run; docs/testing.md):
# 3 members in network namespaces, 90 s, a fixed seed so that a failure's
# fault schedule can be replayed. Its summary is printed whole.
run_chaos() {
    local log="$logdir/chaos.log" from=$(elapsed)
    tests/chaos/run --duration 90 --seed 1 --bin "$root/build/cli/raftfs" >"$log" 2>&1
    local rc=$?
    {
        sed -n '/^chaos summary/,/^verdict/p' "$log"
        [ $rc -eq 0 ] || grep -v '^chaos summary' "$log" | tail -60
    } >"$logdir/chaos.out"
    if [ $rc -eq 0 ]; then result chaos "chaos PASS" 0 "$from"; else result chaos "chaos FAIL" 1 "$from"; fi
}

# The decoders of outside bytes against libFuzzer's inputs, 10 s each
# (tests/fuzz/run; longer campaigns by hand), on one CPU at the lowest
# priority.
run_fuzz() {
    local log="$logdir/fuzz.log" from=$(elapsed)
    FUZZ_JOBS=1 nice -n 19 tests/fuzz/run all 10 >"$log" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then
        cp "$log" "$logdir/fuzz.out"
        result fuzz "fuzz PASS" 0 "$from"
    else
        tail -60 "$log" >"$logdir/fuzz.out"
        result fuzz "fuzz FAIL" 1 "$from"
    fi
}

# Sanitizer reports of every process (the servers run in the background,
# their stderr goes to logs that tests delete): one file per ASan report.
# UBSan's reports ignore log_path in this GCC's combined runtime and go to
# stderr (a server's log, which a failed bats test prints); halt_on_error
# (and -fno-sanitize-recover) makes the process exit 1, so the test that
# ran it fails. Only the sanitizer build's steps get these settings.
san="$logdir/sanitizers"
mkdir -p "$san"
san_env=("ASAN_OPTIONS=log_path=$san/asan:detect_leaks=1"
    "UBSAN_OPTIONS=log_path=$san/ubsan:print_stacktrace=1:halt_on_error=1")

# The sanitizer build's bats run is the longest step (about 10 minutes
# here): it starts first, and the normal ctest run follows it; the other
# lane runs the sanitizer ctest, the normal bats and the chaos run
# (docs/testing.md has the figures this balance comes from: 580 + 51 s
# against 144 + 373 + 103 s).
run_fuzz &
fuzz_pid=$!
{
    run_bats build-asan sanitizer 1 "${san_env[@]}"
    run_ctest build normal
} &
lane1_pid=$!
{
    # test_fault fails every call of each site in turn; the normal build
    # runs all of them, the sanitizer build every 4th past the first 24
    # (the error paths are the same code; under ASan each run costs about
    # 5 times as much).
    run_ctest build-asan sanitizer "${san_env[@]}" RAFTFS_FAULT_STEP=4
    run_bats build normal 0
    run_chaos
} &
lane2_pid=$!
wait "$lane1_pid" "$lane2_pid" "$fuzz_pid"

failed=0
summary=()
for step in ctest-normal ctest-sanitizer bats-normal bats-sanitizer chaos fuzz; do
    [ -f "$logdir/$step.out" ] && cat "$logdir/$step.out"
    if [ -f "$logdir/$step.res" ]; then
        summary+=("$(sed -n 1p "$logdir/$step.res")")
        [ "$(sed -n 2p "$logdir/$step.res")" = 0 ] || failed=1
    else
        summary+=("$step did-not-finish")
        failed=1
    fi
done

reports=$(find "$san" -type f | wc -l)
if [ "$reports" -ne 0 ]; then
    failed=1
    echo "sanitizer reports:"
    cat "$san"/*
fi
summary+=("sanitizer reports $reports")

# Nothing may be left mounted or running.
left=$(awk '$3 ~ /^fuse/ && $2 ~ /raftfs-/ {print $2}' /proc/mounts)
if [ -n "$left" ]; then
    failed=1
    echo "left mounted: $left"
fi
running=$(pgrep -af "raftfs mount /tmp/raftfs-" || true)
if [ -n "$running" ]; then
    failed=1
    echo "left running: $running"
fi

verdict=PASS
[ $failed -eq 0 ] || verdict=FAIL
echo "SUMMARY: ${summary[*]} -> $verdict"
[ $failed -eq 0 ] && rm -rf "$logdir"
exit $failed
