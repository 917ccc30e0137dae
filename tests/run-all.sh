#!/usr/bin/env bash
# run-all.sh - every test raftfs has, from a fresh Debian 12 machine:
# installs what is missing, builds the normal and the sanitizer build, runs
# ctest and every bats suite against both, a short chaos run (tests/chaos)
# against the normal build, 10 s of each fuzz target (tests/fuzz, in the
# background meanwhile), and ends with one summary line.
# Exit status 0 only if everything passed and the sanitizers reported nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD

scripts/deps.sh || exit 1
scripts/build.sh all || exit 1

failed=0
summary=()
logdir=$(mktemp -d /tmp/raftfs-tests.XXXXXX)

run_ctest() { # BUILD-DIR LABEL [ENV=VALUE...]
    local dir=$1 out="$logdir/ctest-$2.log"
    local label=$2
    shift 2
    env "$@" ctest --test-dir "$dir" --output-on-failure -j 2 >"$out" 2>&1
    local rc=$?
    local line
    line=$(grep -E '[0-9]+% tests passed' "$out" | tail -1)
    local total pass
    total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
    pass=$(( total - $(echo "$line" | sed -E 's/.*, ([0-9]+) tests failed.*/\1/') ))
    echo "ctest ($label): $line"
    [ $rc -eq 0 ] || { failed=1; cat "$out"; }
    summary+=("ctest $label $pass/$total")
}

# The two bats runs (normal and sanitizer builds) go at once: their tests
# mostly wait (elections, timers, the kernel), and one after the other they
# took about 13 of the suite's 15 minutes on two CPUs. Each draws its ports
# from its own part of the range (test_port_base in tests/bats/helpers.bash).
bats_start() { # BUILD-DIR LABEL SLOT [ENV=VALUE...]
    local dir=$1 label=$2 slot=$3
    shift 3
    env "$@" RAFTFS_TEST_PORT_SLOTS=2 RAFTFS_TEST_PORT_SLOT="$slot" \
        RAFTFS_BIN="$root/$dir/cli/raftfs" FSTEST_BIN="$root/$dir/tests/bats/fstest" \
        bats --tap tests/bats >"$logdir/bats-$label.tap" 2>&1 &
    bats_pids+=($!)
}

bats_collect() { # PID LABEL
    wait "$1"
    local rc=$?
    local out="$logdir/bats-$2.tap"
    local ok notok
    ok=$(grep -c '^ok ' "$out")
    notok=$(grep -c '^not ok ' "$out")
    echo "bats ($2): $ok passed, $notok failed"
    [ $rc -eq 0 ] && [ "$notok" -eq 0 ] || { failed=1; grep -v '^ok ' "$out"; }
    summary+=("bats $2 $ok/$((ok + notok))")
}

# The fuzz targets' clang build and their runs use one CPU at the lowest
# priority while the other tests run: those mostly wait (elections,
# timers, the kernel), and the suite fits its time on two CPUs only so.
fuzz_out="$logdir/fuzz.log"
FUZZ_JOBS=1 nice -n 19 tests/fuzz/run all 10 >"$fuzz_out" 2>&1 &
fuzz_pid=$!

# Sanitizer reports of every process (the servers run in the background,
# their stderr goes to logs that tests delete): one file per ASan report.
# UBSan's reports ignore log_path in this GCC's combined runtime and go to
# stderr (a server's log, which a failed bats test prints); halt_on_error
# (and -fno-sanitize-recover) makes the process exit 1, so the test that
# ran it fails. Only the sanitizer build's runs get these settings.
san="$logdir/sanitizers"
mkdir -p "$san"
san_env=("ASAN_OPTIONS=log_path=$san/asan:detect_leaks=1"
    "UBSAN_OPTIONS=log_path=$san/ubsan:print_stacktrace=1:halt_on_error=1")

run_ctest build normal
run_ctest build-asan sanitizer "${san_env[@]}"

bats_pids=()
bats_start build normal 0
bats_start build-asan sanitizer 1 "${san_env[@]}"
bats_collect "${bats_pids[0]}" normal
bats_collect "${bats_pids[1]}" sanitizer

# A real cluster under every kind of fault (tests/chaos/run; docs/testing.md):
# 3 members in network namespaces, 90 s, a fixed seed so that a failure's
# fault schedule can be replayed. Its summary is printed whole.
chaos_out="$logdir/chaos.log"
tests/chaos/run --duration 90 --seed 1 --bin "$root/build/cli/raftfs" >"$chaos_out" 2>&1
chaos_rc=$?
sed -n '/^chaos summary/,/^verdict/p' "$chaos_out"
if [ $chaos_rc -eq 0 ]; then
    summary+=("chaos PASS")
else
    failed=1
    summary+=("chaos FAIL")
    grep -v '^chaos summary' "$chaos_out" | tail -60
fi

# The decoders of outside bytes against libFuzzer's inputs, 10 s each
# (tests/fuzz/run; longer campaigns by hand): started in the background
# (run-all.sh's start), collected here.
wait "$fuzz_pid"
fuzz_rc=$?
if [ $fuzz_rc -eq 0 ]; then
    cat "$fuzz_out"
    summary+=("fuzz PASS")
else
    failed=1
    summary+=("fuzz FAIL")
    tail -60 "$fuzz_out"
fi

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
