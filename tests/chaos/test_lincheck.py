#!/usr/bin/python3
"""Tests of lincheck.py: hand-made histories with known verdicts, a brute-force
cross-check on tiny random histories, simulated atomic registers (linearizable by
construction) and their mutations, the time bound, a long history, and the CLI.

Run from anywhere: python3 tests/chaos/test_lincheck.py
"""

import functools
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import lincheck  # noqa: E402

LINCHECK = os.path.join(HERE, "lincheck.py")
SEGMENT = lincheck.SEGMENT


def op(process, kind, value, invoke, complete, outcome="ok", key="k"):
    return {"process": process, "key": key, "op": kind, "value": value,
            "invoke": invoke, "complete": complete, "outcome": outcome}


def w(p, v, i, c, outcome="ok", key="k"):
    return op(p, "write", v, i, c, outcome, key)


def r(p, v, i, c, outcome="ok", key="k"):
    return op(p, "read", v, i, c, outcome, key)


def d(p, i, c, outcome="ok", key="k"):
    return op(p, "delete", None, i, c, outcome, key)


def init(v, key="k"):
    return {"op": "init", "key": key, "value": v}


def verdict(ops, key="k", time_limit=10.0):
    return lincheck.check_history(ops, time_limit=time_limit)[key][0]


class Linearizable(unittest.TestCase):
    def assertOk(self, ops):
        res = lincheck.check_history(ops)
        for key, (v, why) in res.items():
            self.assertEqual(v, "ok", f"{key}: {why}")

    def test_empty(self):
        self.assertEqual(lincheck.check_history([]), {})
        self.assertEqual(verdict([init("x")]), "ok")

    def test_sequential(self):
        self.assertOk([r(1, None, 0, 1), w(1, "1-1", 2, 3), r(2, "1-1", 4, 5),
                       w(2, "2-1", 6, 7), r(1, "2-1", 8, 9), r(2, "2-1", 10, 11)])

    def test_concurrent_read_sees_old_or_new(self):
        base = [w(1, "1-1", 0, 10), w(1, "1-2", 20, 40)]
        self.assertOk(base + [r(2, "1-1", 25, 35)])
        self.assertOk(base + [r(2, "1-2", 25, 35)])
        # Overlapping readers may see old and new in either order.
        self.assertOk(base + [r(2, "1-2", 21, 30), r(3, "1-1", 22, 31)])

    def test_concurrent_writes_any_order(self):
        self.assertOk([w(1, "1-1", 0, 10), w(2, "2-1", 0, 10), r(3, "1-1", 20, 30)])
        self.assertOk([w(1, "1-1", 0, 10), w(2, "2-1", 0, 10), r(3, "2-1", 20, 30)])

    def test_failed_write_never_applied(self):
        self.assertOk([w(1, "1-1", 0, 10), w(2, "2-1", 20, 30, "fail"), r(3, "1-1", 40, 50)])

    def test_ignored_reads(self):
        # Reads that failed or timed out say nothing, whatever value they carry.
        self.assertOk([w(1, "1-1", 0, 10), r(2, "zzz", 20, 30, "fail"),
                       r(2, "yyy", 40, None, "unknown"), r(3, "1-1", 50, 60)])

    def test_many_keys_independent(self):
        ops = [w(1, "a", 0, 10, key="x"), r(2, "a", 20, 30, key="x"),
               w(1, "b", 0, 10, key="y"), r(2, None, 20, 30, key="y")]
        res = lincheck.check_history(ops)
        self.assertEqual(res["x"], ("ok", ""))
        self.assertEqual(res["y"][0], "violation")


class NotLinearizable(unittest.TestCase):
    def assertViolation(self, ops, *fragments):
        v, why = lincheck.check_history(ops)["k"]
        self.assertEqual(v, "violation")
        for f in fragments:
            self.assertIn(f, why)
        return why

    def test_stale_read(self):
        self.assertViolation([w(1, "1-1", 0, 10), w(1, "1-2", 20, 30), r(2, "1-1", 40, 50)],
                             "P1 write \"1-2\" [20, 30]", "P2 read -> \"1-1\" [40, 50]")

    def test_read_of_value_never_written(self):
        self.assertViolation([w(1, "1-1", 0, 10), r(2, "9-9", 20, 30)], "never written")

    def test_reads_go_backwards(self):
        # The write is concurrent with both reads, but they do not overlap each other.
        self.assertViolation([w(1, "1-1", 0, 10), w(1, "1-2", 20, 100),
                              r(2, "1-2", 30, 40), r(3, "1-1", 50, 60)])

    def test_read_of_failed_write(self):
        self.assertViolation([w(1, "1-1", 0, 10, "fail"), r(2, "1-1", 20, 30)], "failed")
        self.assertViolation([w(1, "1-1", 0, 10, "fail"), r(2, "1-1", 5, 30)], "failed")

    def test_lost_acknowledged_write(self):
        self.assertViolation([w(1, "1-1", 0, 10), w(1, "1-2", 20, 30),
                              r(2, "1-1", 40, 50), r(3, "1-1", 60, 70)])

    def test_read_before_write(self):
        self.assertViolation([r(2, "1-1", 0, 10), w(1, "1-1", 20, 30)], "before any write")

    def test_two_writers_two_readers_cycle(self):
        # Reader 3 sees a then b, reader 4 sees b then a; each write happened once.
        why = self.assertViolation([w(1, "a", 0, 100), w(2, "b", 0, 100),
                                    r(3, "a", 10, 20), r(3, "b", 30, 40),
                                    r(4, "b", 10, 20), r(4, "a", 30, 40)])
        self.assertIn("no linearization of the 6 ops", why)

    def test_violation_after_long_prefix(self):
        ops = []
        for i in range(200):
            ops += [w(1, f"1-{i}", 100 * i, 100 * i + 10), r(2, f"1-{i}", 100 * i + 5, 100 * i + 50)]
        ops.append(r(3, "1-150", 20000, 20010))
        self.assertViolation(ops, "P1 write \"1-151\"", "P3 read -> \"1-150\" [20000, 20010]")


class UnknownOutcomes(unittest.TestCase):
    def test_unknown_write_never_read(self):
        self.assertEqual(verdict([w(1, "1-1", 0, 10), w(2, "2-1", 20, None, "unknown"),
                                  r(3, "1-1", 40, 50), r(3, "1-1", 60, 70)]), "ok")

    def test_unknown_write_read_later(self):
        base = [w(1, "1-1", 0, 10), w(2, "2-1", 20, 25, "unknown"), r(3, "1-1", 40, 50)]
        # It took effect after its client gave up: fine.
        self.assertEqual(verdict(base + [r(3, "2-1", 60, 70)]), "ok")
        self.assertEqual(verdict(base + [r(3, "2-1", 60, 70), r(4, "2-1", 80, 90)]), "ok")
        # Once seen, the value cannot be replaced by the older one again.
        self.assertEqual(verdict(base + [r(3, "2-1", 60, 70), r(4, "1-1", 80, 90)]), "violation")

    def test_unknown_write_orders_with_later_writes(self):
        # 2-1 was read, so it took effect before 70; the write of 1-2 started later
        # and completed, so a read after that cannot return 2-1 again.
        self.assertEqual(verdict([w(2, "2-1", 0, None, "unknown"), r(3, "2-1", 60, 70),
                                  w(1, "1-2", 80, 90), r(3, "2-1", 100, 110)]), "violation")

    def test_unknown_delete(self):
        self.assertEqual(verdict([w(1, "a", 0, 10), d(2, 20, None, "unknown"),
                                  r(3, "a", 30, 40), r(3, None, 50, 60)]), "ok")
        self.assertEqual(verdict([w(1, "a", 0, 10), d(2, 20, None, "unknown"),
                                  r(3, None, 30, 40), r(3, "a", 50, 60)]), "violation")

    def test_unknown_repeated_value(self):
        # Two unknown writes of the same value: either may explain the read.
        self.assertEqual(verdict([w(1, "x", 0, 10, "unknown"), w(2, "y", 20, 30),
                                  w(3, "x", 40, None, "unknown"), r(4, "x", 100, 110)]), "ok")
        # An unknown write may take effect long after its client gave up, even after y.
        self.assertEqual(verdict([w(1, "x", 0, 10, "unknown"), w(2, "y", 20, 30),
                                  r(4, "x", 32, 35), w(3, "x", 40, None, "unknown")]), "ok")
        # An acknowledged x is overwritten by y, and the other x starts after the read.
        self.assertEqual(verdict([w(1, "x", 0, 10), w(2, "y", 20, 30),
                                  r(4, "x", 32, 35), w(3, "x", 40, None, "unknown")]),
                         "violation")


class Deletes(unittest.TestCase):
    def test_read_absent_after_delete(self):
        self.assertEqual(verdict([w(1, "a", 0, 10), d(1, 20, 30), r(2, None, 40, 50)]), "ok")

    def test_read_absent_initially(self):
        self.assertEqual(verdict([r(2, None, 0, 5), w(1, "a", 10, 20)]), "ok")

    def test_read_value_after_delete(self):
        self.assertEqual(verdict([w(1, "a", 0, 10), d(1, 20, 30), r(2, "a", 40, 50)]), "violation")

    def test_init_value(self):
        self.assertEqual(verdict([init("x"), r(1, "x", 0, 5)]), "ok")
        self.assertEqual(verdict([init("x"), r(1, None, 0, 5)]), "violation")
        self.assertEqual(verdict([init("x"), d(2, 0, 3), r(1, None, 4, 5)]), "ok")


class RepeatedValues(unittest.TestCase):
    def test_value_written_twice(self):
        self.assertEqual(verdict([w(1, "a", 0, 10), w(1, "b", 20, 30), w(1, "a", 40, 50),
                                  r(2, "a", 60, 70)]), "ok")
        self.assertEqual(verdict([w(1, "a", 0, 10), w(1, "b", 20, 30), w(1, "a", 40, 50),
                                  r(2, "a", 35, 45)]), "ok")
        self.assertEqual(verdict([w(1, "a", 0, 10), w(1, "b", 20, 30), w(1, "a", 40, 50),
                                  r(2, "a", 32, 38)]), "violation")

    def test_rewrite_of_initial_value(self):
        self.assertEqual(verdict([init("a"), w(1, "b", 0, 10), w(1, "a", 20, None, "unknown"),
                                  r(2, "a", 30, 40)]), "ok")
        self.assertEqual(verdict([init("a"), w(1, "b", 0, 10), w(1, "a", 20, None, "fail"),
                                  r(2, "a", 30, 40)]), "violation")


# --- brute force -----------------------------------------------------------------------

INF = float("inf")


def brute_force(ops, init_value=None):
    """Linearizable? Straight from the definition, for tiny single-key histories: pick
    any op that no other remaining op must precede; unknown writes have no deadline and
    may be left out; failed writes and unacknowledged reads are left out."""
    items = []
    for o in ops:
        if o["op"] == "read":
            if o["outcome"] == "ok":
                items.append((o["invoke"], o["complete"], "read", o["value"], True))
        elif o["outcome"] != "fail":
            ok = o["outcome"] == "ok"
            value = o["value"] if o["op"] == "write" else None
            items.append((o["invoke"], o["complete"] if ok else INF, "write", value, ok))

    @functools.lru_cache(maxsize=None)
    def search(remaining, state):
        if all(not items[i][4] for i in remaining):
            return True
        for i in remaining:
            inv, _, kind, value, required = items[i]
            if any(items[j][1] < inv for j in remaining if j != i):
                continue
            rest = remaining - {i}
            if kind == "read":
                if value == state and search(rest, state):
                    return True
            elif search(rest, value) or (not required and search(rest, state)):
                return True
        return False

    return search(frozenset(range(len(items))), init_value)


class BruteForceCrossCheck(unittest.TestCase):
    def tearDown(self):
        lincheck.SEGMENT = SEGMENT

    def test_tiny_random_histories(self):
        rng = random.Random(7)
        counts = {True: 0, False: 0}
        for case in range(3000):
            # Every other case cuts wherever possible, to exercise the carried configurations.
            lincheck.SEGMENT = 1 if case % 2 else SEGMENT
            n = rng.randint(1, 7)
            init_value = rng.choice([None, None, "a"])
            ops = [] if init_value is None else [init(init_value)]
            for _ in range(n):
                i = rng.randint(0, 12)
                c = i + rng.randint(0, 6)
                outcome = rng.choice(["ok", "ok", "ok", "fail", "unknown"])
                kind = rng.choice(["read", "read", "write", "write", "delete"])
                if kind == "read":
                    ops.append(r(rng.randint(1, 3), rng.choice([None, "a", "b", "c"]), i, c, outcome))
                elif kind == "write":
                    ops.append(w(rng.randint(1, 3), rng.choice(["a", "b", "c"]), i, c, outcome))
                else:
                    ops.append(d(rng.randint(1, 3), i, c, outcome))
                if outcome == "unknown" and rng.random() < 0.5:
                    ops[-1]["complete"] = None
            expected = brute_force([o for o in ops if o["op"] != "init"], init_value)
            got = verdict(ops)
            self.assertEqual(got, "ok" if expected else "violation",
                             f"case {case}: {json.dumps(ops)}")
            counts[expected] += 1
        # Both verdicts are well represented.
        self.assertGreater(min(counts.values()), 500, counts)

    def test_small_simulated_histories(self):
        # Register runs with one read changed to some written value (or absent): a mix
        # of verdicts, with many unknown outcomes and repeated values.
        rng = random.Random(11)
        counts = {True: 0, False: 0}
        for case in range(1000):
            lincheck.SEGMENT = 1 if case % 2 else SEGMENT
            ops = simulate(rng, rng.randint(2, 4), rng.randint(6, 12), unique=case % 3 != 0,
                           p_fail=0.15, p_unknown=0.2, max_gap=10, max_dur=40)
            reads = [o for o in ops if o["op"] == "read" and o["outcome"] == "ok"]
            if reads and rng.random() < 0.7:
                values = sorted({o["value"] for o in ops if o["op"] == "write"})
                rng.choice(reads)["value"] = rng.choice(values + [None])
            expected = brute_force(ops)
            self.assertEqual(verdict(ops), "ok" if expected else "violation",
                             f"case {case}: {json.dumps(ops)}")
            counts[expected] += 1
        self.assertGreater(min(counts.values()), 200, counts)

    def test_cuts_do_not_change_verdicts(self):
        # Longer histories, checked with cuts as frequent as possible, as usual, and
        # only where no operation is pending.
        rng = random.Random(12)
        for case in range(150):
            ops = simulate(rng, rng.randint(2, 8), rng.randint(30, 150), unique=case % 2 == 0,
                           p_fail=0.1, p_unknown=0.15, max_gap=5, max_dur=60)
            reads = [o for o in ops if o["op"] == "read" and o["outcome"] == "ok"]
            if reads and rng.random() < 0.8:
                values = sorted({o["value"] for o in ops if o["op"] == "write"})
                rng.choice(reads)["value"] = rng.choice(values + [None])
            verdicts = set()
            for segment in (1, SEGMENT, 10**9):
                lincheck.SEGMENT = segment
                verdicts.add(verdict(ops))
            self.assertEqual(len(verdicts), 1, f"case {case}: {json.dumps(ops)}")


# --- simulated atomic register --------------------------------------------------------

def simulate(rng, n_procs, n_ops, key="k", unique=True, p_fail=0.05, p_unknown=0.05,
             max_gap=20, max_dur=100):
    """A history of an atomic register: each op takes effect at a random point of its
    window (unknown writes at any point after invoke, possibly past the client's
    timeout, or never; failed writes never), reads return the value at their point."""
    ops, effects = [], []  # effects: (point, seq, op dict) of applied ops
    clocks = [rng.randint(0, max_gap) for _ in range(n_procs)]
    seqs = [0] * n_procs
    for _ in range(n_ops):
        p = rng.randrange(n_procs)
        inv = clocks[p] + rng.randint(0, max_gap)
        comp = inv + rng.randint(1, max_dur)
        clocks[p] = comp
        kind = rng.choice(["read", "read", "write", "write", "delete"] if rng.random() < 0.1
                          else ["read", "write"])
        roll = rng.random()
        outcome = "fail" if roll < p_fail else "unknown" if roll < p_fail + p_unknown else "ok"
        if kind == "write":
            seqs[p] += 1
            value = f"{p}-{seqs[p]}" if unique else rng.choice(["a", "b", "c"])
        else:
            value = None
        o = op(p, kind, value, inv, comp, outcome, key)
        if outcome == "unknown" and rng.random() < 0.5:
            o["complete"] = None
        ops.append(o)
        if outcome == "ok" or (outcome == "unknown" and kind != "read" and rng.random() < 0.5):
            point = rng.uniform(inv, comp if outcome == "ok" else comp + 3 * max_dur)
            effects.append((point, len(effects), o))
        elif kind == "read":
            o["value"] = rng.choice([None, "junk"])  # carries no information
    state = None
    for _, _, o in sorted(effects, key=lambda e: (e[0], e[1])):
        if o["op"] == "read":
            o["value"] = state
        else:
            state = o["value"]
    return ops


class Simulated(unittest.TestCase):
    def test_random_histories_ok_and_mutated(self):
        rng = random.Random(1)
        stale = 0
        for case in range(200):
            unique = case % 4 != 3
            ops = simulate(rng, rng.randint(1, 6), rng.randint(5, 60), unique=unique)
            self.assertEqual(verdict(ops), "ok", f"case {case}: {json.dumps(ops)}")
            ok_reads = [o for o in ops if o["op"] == "read" and o["outcome"] == "ok"]
            if not ok_reads:
                continue
            # A read returning a value nobody wrote.
            mutated = [dict(o) for o in ops]
            victim = rng.choice([o for o in mutated if o["op"] == "read" and o["outcome"] == "ok"])
            victim["value"] = "never-written"
            self.assertEqual(verdict(mutated), "violation", f"case {case}")
            if not unique:
                continue
            # A stale read: w1 -> w2 -> read in real time, the read returning w1's value.
            ok_writes = [o for o in ops if o["op"] == "write" and o["outcome"] == "ok"]
            for rd in ok_reads:
                pairs = [(a, b) for a in ok_writes for b in ok_writes
                         if a["complete"] < b["invoke"] and b["complete"] < rd["invoke"]]
                if pairs:
                    old = rng.choice(pairs)[0]
                    mutated = [dict(o, value=old["value"]) if o is rd else o for o in ops]
                    self.assertEqual(verdict(mutated), "violation", f"case {case}")
                    stale += 1
                    break
        self.assertGreater(stale, 50)

    def test_many_keys(self):
        rng = random.Random(2)
        ops = []
        for k in range(5):
            ops += simulate(rng, 4, 300, key=f"/reg/{k}")
        res = lincheck.check_history(ops)
        self.assertEqual(sorted(res), [f"/reg/{k}" for k in range(5)])
        self.assertTrue(all(v == ("ok", "") for v in res.values()), res)

    def test_long_history(self):
        rng = random.Random(3)
        ops = simulate(rng, 8, 20000, max_gap=2)
        t0 = time.monotonic()
        v, why = lincheck.check_history(ops, time_limit=60)["k"]
        elapsed = time.monotonic() - t0
        print(f"\n  20,000 ops, 8 processes: {v} in {elapsed:.2f} s", file=sys.stderr)
        self.assertEqual(v, "ok", why)

    def test_long_history_with_stale_read(self):
        # Busy (almost never quiescent) and 20,000 ops long, with one stale read in the
        # middle: the search must rule out every way of getting there.
        rng = random.Random(4)
        ops = simulate(rng, 8, 20000, max_gap=2)
        reads = [o for o in ops if o["op"] == "read" and o["outcome"] == "ok"]
        writes = sorted((o for o in ops if o["op"] == "write" and o["outcome"] == "ok"),
                        key=lambda o: o["complete"])
        victim = reads[len(reads) // 2]
        newer = [o for o in writes if o["complete"] < victim["invoke"]][-1]
        older = [o for o in writes if o["complete"] < newer["invoke"]][-1]
        victim["value"] = older["value"]
        t0 = time.monotonic()
        v, why = lincheck.check_history(ops, time_limit=60)["k"]
        elapsed = time.monotonic() - t0
        print(f"\n  20,000 ops with a stale read: {v} in {elapsed:.2f} s", file=sys.stderr)
        self.assertEqual(v, "violation")
        self.assertIn(older["value"], why)


def pathological(n=30):
    """A big concurrent block that needs an exponential search: n writes spanning
    everything, each value read by a read spanning everything too, and three sequential
    reads a, b, a (each value written once)."""
    ops = [w(1 + i, f"v{i}", 0, 1000) for i in range(n)]
    ops += [r(100 + i, f"v{i}", 0, 1000) for i in range(2, n)]
    ops += [r(100, "v0", 10, 20), r(100, "v1", 30, 40), r(100, "v0", 50, 60)]
    return ops


class TimeBound(unittest.TestCase):
    def test_time_limit_gives_unknown(self):
        t0 = time.monotonic()
        v, why = lincheck.check_history(pathological(), time_limit=0.5)["k"]
        elapsed = time.monotonic() - t0
        self.assertEqual(v, "unknown")
        self.assertIn("time limit", why)
        self.assertLess(elapsed, 5)

    def test_small_version_is_decided(self):
        self.assertEqual(verdict(pathological(6)), "violation")


class Cli(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.dir.cleanup()

    def write(self, lines):
        path = os.path.join(self.dir.name, "h.jsonl")
        with open(path, "w") as f:
            f.write("".join(line if isinstance(line, str) else json.dumps(line) + "\n"
                            for line in lines))
        return path

    def run_cli(self, *args):
        return subprocess.run([sys.executable, LINCHECK, *args], capture_output=True,
                              text=True, timeout=60)

    def test_ok(self):
        p = self.write([w(1, "a", 0, 10, key="x"), r(2, "a", 20, 30, key="x"), "\n",
                        r(2, None, 0, 10, key="y"), init("v", key="z")])
        res = self.run_cli(p)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(res.stdout.splitlines(),
                         ["x ok 2", "y ok 1", "z ok 0", "lincheck: 3 keys, 0 violations, 0 unknown"])

    def test_violation(self):
        p = self.write([w(1, "a", 0, 10, key="x"), r(2, "b", 20, 30, key="x"),
                        r(2, None, 0, 10, key="y")])
        res = self.run_cli(p)
        self.assertEqual(res.returncode, 1)
        lines = res.stdout.splitlines()
        self.assertTrue(lines[0].startswith("x violation: "), lines)
        self.assertEqual(lines[-1], "lincheck: 2 keys, 1 violations, 0 unknown")
        res = self.run_cli(p, "--json")
        self.assertEqual(res.returncode, 1)
        out = json.loads(res.stdout)
        self.assertEqual((out["keys"], out["violations"], out["unknown"]), (2, 1, 0))
        self.assertEqual([x["verdict"] for x in out["results"]], ["violation", "ok"])

    def test_unknown(self):
        p = self.write(pathological())
        res = self.run_cli(p, "--time-limit", "0.3")
        self.assertEqual(res.returncode, 3, res.stdout + res.stderr)
        self.assertTrue(res.stdout.startswith("k unknown: time limit after"), res.stdout)

    def test_bad_input(self):
        good = json.dumps(w(1, "a", 0, 10)) + "\n"
        cases = [
            ([good, good, "{not json\n"], "line 3"),
            ([good, json.dumps({"process": 1, "key": "k", "op": "read", "value": None,
                                "invoke": 0, "outcome": "ok"}) + "\n"], "line 2: missing field 'complete'"),
            ([json.dumps(op(1, "cas", "a", 0, 1)) + "\n"], "line 1: unknown op"),
            ([good, json.dumps(w(1, "a", 0, 1, "maybe")) + "\n"], "line 2: unknown outcome"),
            ([good, good, json.dumps(w(1, "a", 10, 5)) + "\n"], "line 3: complete 5 < invoke 10"),
            (["[1, 2]\n"], "line 1: expected a JSON object"),
            ([good, json.dumps(init("x")) + "\n", json.dumps(init("y")) + "\n"],
             "line 3: second init line"),
            ([json.dumps(w(1, None, 0, 1)) + "\n"], "line 1: a write's 'value' must be a string"),
        ]
        for lines, message in cases:
            res = self.run_cli(self.write(lines))
            self.assertEqual(res.returncode, 2, (lines, res.stdout, res.stderr))
            self.assertIn(message, res.stderr)
            self.assertNotIn("Traceback", res.stderr)
        res = self.run_cli(os.path.join(self.dir.name, "missing.jsonl"))
        self.assertEqual(res.returncode, 2)
        self.assertIn("cannot read", res.stderr)
        self.assertNotIn("Traceback", res.stderr)

    def test_api_errors_name_the_op(self):
        with self.assertRaisesRegex(lincheck.HistoryError, "op #2: missing field 'outcome'"):
            lincheck.check_history([w(1, "a", 0, 1), {"process": 1, "key": "k", "op": "read",
                                                      "value": None, "invoke": 0, "complete": 1}])


if __name__ == "__main__":
    unittest.main(verbosity=1)
