#!/usr/bin/python3
"""lincheck.py: linearizability checker for histories of read/write/delete registers.

Input: JSON lines, one operation each, in any order:

    {"process": 3, "key": "/reg/2", "op": "write", "value": "3-17",
     "invoke": 1200, "complete": 1500, "outcome": "ok"}

plus optional {"op": "init", "key": K, "value": V} lines giving a key's initial value
(otherwise every key starts absent, i.e. null). Other fields are ignored.

Model
-----
Each key is a register holding a string or "absent" (null). `write` sets it to `value`,
`delete` sets it to absent, `read` returned `value` (null = absent). A history is
linearizable when every operation can be given a point inside its [invoke, complete]
window such that, taken in the order of those points, the operations form a legal
sequential run of the register. Two operations a, b are ordered in real time (a must
come before b) only when a.complete < b.invoke; equal times count as concurrent.
Registers are checked key by key: linearizability is compositional, so the history is
linearizable iff each key's sub-history is.

Outcomes:
- "ok": the operation took effect exactly once inside its window.
- "fail": it certainly never took effect. A failed write or delete is left out; a read
  that ok-returned a value only a failed write wrote is a violation.
- "unknown" (timeout, lost connection): a write or delete may take effect at any time
  after invoke, or never; its `complete` is ignored (the window is open-ended).
- Reads whose outcome is fail or unknown returned nothing usable and are ignored.

Search
------
Per key, after the sound reductions of _prepare(), the history is cut into segments
(_segments(): at every instant no operation spans, and in busy stretches every few
dozen operations at an instant few operations span), and each segment is searched with
the Wing-Gong-Lowe algorithm: an iterative depth-first search over "which operation
takes effect next", memoizing the configurations (set of linearized operations,
register value) already explored, as in Porcupine. A segment's end configurations
(register value, and which of the operations spanning the cut were linearized before
it) are the next segment's start configurations. They are produced lazily: a
linearizable history costs roughly one pass, and a segment is searched further only
when a later one got stuck. On top of the plain search, some moves are taken without
trying alternatives when that provably loses no linearization, and dead ends are cut
early (see _SegmentSearch._run). The search checks a time limit; when it runs out the
key's verdict is "unknown".

Usage: lincheck.py HISTORY.jsonl [--time-limit SECONDS] [--json]
Exit status: 0 all keys linearizable, 1 some violation, 3 no violation but some key
unknown (time limit), 2 bad input.
"""

import argparse
import heapq
import json
import sys
import time
from collections import defaultdict

OUTCOMES = ("ok", "fail", "unknown")
KINDS = ("read", "write", "delete")
REQUIRED_FIELDS = ("process", "key", "op", "invoke", "complete", "outcome")


class HistoryError(ValueError):
    """Malformed input; the message names the line (or operation) at fault."""


class Op:
    """One validated history record (not an init line)."""

    __slots__ = ("process", "key", "kind", "value", "invoke", "complete", "outcome", "where")

    def __init__(self, process, key, kind, value, invoke, complete, outcome, where):
        self.process = process
        self.key = key
        self.kind = kind
        self.value = value  # a string, or None (absent) for deletes and reads of nothing
        self.invoke = invoke
        self.complete = complete
        self.outcome = outcome
        self.where = where  # "line N", or N for "op #N": for messages


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _parse(rec, where):
    """Validates one record; returns an Op, or ("init", key, value) for an init line."""
    if not isinstance(rec, dict):
        raise HistoryError(f"{where}: expected a JSON object")
    if "op" not in rec:
        raise HistoryError(f"{where}: missing field 'op'")
    kind = rec["op"]
    if kind == "init":
        for f in ("key", "value"):
            if f not in rec:
                raise HistoryError(f"{where}: init line misses field '{f}'")
        if not isinstance(rec["key"], str):
            raise HistoryError(f"{where}: 'key' must be a string")
        if rec["value"] is not None and not isinstance(rec["value"], str):
            raise HistoryError(f"{where}: init 'value' must be a string or null")
        return ("init", rec["key"], rec["value"])
    if kind not in KINDS:
        raise HistoryError(f"{where}: unknown op {json.dumps(kind)} "
                           "(expected read, write, delete or init)")
    for f in REQUIRED_FIELDS:
        if f not in rec:
            raise HistoryError(f"{where}: missing field '{f}'")
    if kind != "delete" and "value" not in rec:
        raise HistoryError(f"{where}: missing field 'value'")
    key, outcome, invoke, complete = rec["key"], rec["outcome"], rec["invoke"], rec["complete"]
    if not isinstance(key, str):
        raise HistoryError(f"{where}: 'key' must be a string")
    if outcome not in OUTCOMES:
        raise HistoryError(f"{where}: unknown outcome {json.dumps(outcome)} "
                           "(expected ok, fail or unknown)")
    if not _is_int(invoke):
        raise HistoryError(f"{where}: 'invoke' must be an integer")
    if complete is not None and not _is_int(complete):
        raise HistoryError(f"{where}: 'complete' must be an integer or null")
    if outcome == "ok":
        if complete is None:
            raise HistoryError(f"{where}: an ok operation needs a 'complete' time")
        if complete < invoke:
            raise HistoryError(f"{where}: complete {complete} < invoke {invoke}")
    value = None
    if kind == "write":
        value = rec["value"]
        if not isinstance(value, str):
            raise HistoryError(f"{where}: a write's 'value' must be a string")
    elif kind == "read":
        value = rec["value"]
        if value is not None and not isinstance(value, str):
            raise HistoryError(f"{where}: a read's 'value' must be a string or null")
    return Op(rec["process"], key, kind, value, invoke, complete, outcome, where)


def load_history(path):
    """Reads a JSON-lines history into a History (blank lines skipped), one line at a
    time: every record is validated and kept compactly, messages name its line.
    Raises HistoryError on any problem."""
    h = History()
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise HistoryError(f"{path}: line {n}: not valid JSON: {e.msg}") from None
                if not isinstance(rec, dict):
                    raise HistoryError(f"{path}: line {n}: expected a JSON object")
                rec["_line"] = n
                try:
                    h.add(rec)
                except HistoryError as e:
                    raise HistoryError(f"{path}: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise HistoryError(f"{path}: cannot read: {e}") from None
    return h


# ---------------------------------------------------------------------------------------
# Messages

def _fmt_value(v):
    return "absent" if v is None else json.dumps(v)


def _describe(op):
    end = op.complete if op.outcome == "ok" else "?"
    if op.kind == "read":
        what = f"read -> {_fmt_value(op.value)}"
    elif op.kind == "write":
        what = f"write {_fmt_value(op.value)}"
    else:
        what = "delete"
    tag = "" if op.outcome == "ok" else f" ({op.outcome})"
    where = op.where if isinstance(op.where, str) else f"op #{op.where}"
    return f"P{op.process} {what}{tag} [{op.invoke}, {end}] ({where})"


# ---------------------------------------------------------------------------------------
# Reductions

READ, WRITE, MAYBE = 0, 1, 2  # search kinds: read; write that must apply; write that may
UNREAD = 0  # the value id shared by all values no ok read returned (see _check_key)


class _Item:
    """An operation as the search sees it: window [invoke, end], kind, value id."""

    __slots__ = ("invoke", "end", "kind", "value", "op", "index")

    def __init__(self, invoke, end, kind, value, op):
        self.invoke = invoke
        self.end = end
        self.kind = kind
        self.value = value
        self.op = op
        self.index = None  # position in invoke order, set by _segments()


def _prepare(ops, init):
    """Turns one key's operations into search items; returns (items, None) or (None, why).

    Deletes are writes of None throughout. "Producers" of a value v are the writes of v
    that did not fail, plus the initial value when it is v. The rules, each sound and
    complete (the reduced history is linearizable iff the original is):

    1. Reads and writes with outcome fail, and reads with outcome unknown, are dropped:
       failed writes never took effect, and such reads returned nothing.
    2. An ok read of v needs a producer of v invoked no later than the read completed:
       in any linearization the write the read observes precedes it. If there is none,
       the read cannot be explained (never written, only written by a failed write, or
       written only after the read) and the key is a violation.
    3. An unknown write of v that no ok read of v can follow (no such read completes at
       or after the write's invoke) is dropped. Proof: in any linearization containing
       it, the reads between it and the next write (or the end) would return v; there
       are none, so removing it keeps the sequence legal, and "never took effect" is an
       allowed outcome. This holds for deletes and repeated values alike.
    4. An unknown write of v that is the only producer of v (v not the initial value)
       and is read: every read of v must follow it, so it did take effect, before the
       earliest of those reads completed. It becomes a required write with
       end = that completion.
    5. Any other unknown write of v (v repeated, or the initial value) stays optional
       (the search may apply it or leave it out), with end = the latest completion of
       an ok read of v: applied later than that, no read could observe it, and the
       argument of rule 3 removes it again.
    """
    reads = sorted((op for op in ops if op.kind == "read" and op.outcome == "ok"),
                   key=lambda op: (op.invoke, op.complete))
    writes = [op for op in ops if op.kind != "read" and op.outcome != "fail"]
    failed = [op for op in ops if op.kind != "read" and op.outcome == "fail"]
    n_writes = defaultdict(int)  # per value
    first_write = {}  # per value, the write invoked first
    for w in writes:
        n_writes[w.value] += 1
        if w.value not in first_write or w.invoke < first_write[w.value].invoke:
            first_write[w.value] = w
    read_span = {}  # per value, (earliest, latest) completion of an ok read of it
    for r in reads:
        lo, hi = read_span.get(r.value, (r.complete, r.complete))
        read_span[r.value] = (min(lo, r.complete), max(hi, r.complete))

    for r in reads:  # rule 2
        if r.value == init:
            continue
        first = first_write.get(r.value)
        if first is None:
            bad = [w for w in failed if w.value == r.value]
            if bad:
                return None, (f"{_describe(r)} returned the value of a failed operation "
                              f"{_describe(bad[0])}")
            what = "that value was never written"
            if r.value is None:
                what = "the key was never deleted"
            return None, f"{_describe(r)} cannot be explained: {what}"
        if first.invoke > r.complete:
            return None, (f"{_describe(r)} completed before any write of its value began "
                          f"(earliest: {_describe(first)})")

    items = [_Item(r.invoke, r.complete, READ, r.value, r) for r in reads]
    for w in writes:
        if w.outcome == "ok":
            items.append(_Item(w.invoke, w.complete, WRITE, w.value, w))
            continue
        earliest, latest = read_span.get(w.value, (None, None))
        if latest is None or latest < w.invoke:
            continue  # rule 3
        if n_writes[w.value] == 1 and w.value != init:
            # All reads of the value complete after w.invoke (rule 2, w the only producer).
            items.append(_Item(w.invoke, earliest, WRITE, w.value, w))  # rule 4
        else:
            items.append(_Item(w.invoke, latest, MAYBE, w.value, w))  # rule 5
    return items, None


SEGMENT = 32  # operations between cuts in stretches without quiescent points, at least


def _segments(items):
    """Splits items into segments; returns [(items, cut, carried)] where items, sorted by
    invoke, start with the `carried` ones pending from the previous segment.

    A cut at time T (the invoke of the first operation after it) separates the
    operations invoked before T from those invoked at or after T. In any linearization,
    everything up to the last operation that completed before T precedes every
    operation invoked from T on (real time), so the search can stop a segment there:
    its end configuration is the register value plus which operations spanning T were
    already linearized; those spanning operations still pending are carried into the
    next segment. Cuts that no operation spans (quiescent points) are taken whenever
    they occur; in between, a cut is placed every SEGMENT to 2*SEGMENT operations, at
    the instant spanned by the fewest operations, which keeps the number of possible
    end configurations small.
    """
    items.sort(key=lambda it: (it.invoke, it.end))
    for g, it in enumerate(items):
        it.index = g
    n = len(items)
    # spanning[p]: operations invoked before items[p] that may still be pending then;
    # only positions where the invoke time strictly increases can be cuts.
    positions, spanning, ends = [], {}, []
    for p in range(1, n):
        heapq.heappush(ends, items[p - 1].end)
        t = items[p].invoke
        while ends and ends[0] < t:
            heapq.heappop(ends)
        if items[p - 1].invoke < t:
            positions.append(p)
            spanning[p] = len(ends)
    cuts, last, i = [], 0, 0
    while i < len(positions):
        p = positions[i]
        if spanning[p] and p - last < SEGMENT:
            i += 1
            continue
        best, j = i, i
        while (spanning[positions[best]] and j < len(positions)
               and (j == i or positions[j] < last + 2 * SEGMENT)):
            if spanning[positions[j]] < spanning[positions[best]]:
                best = j
            j += 1
        last = positions[best]
        cuts.append(last)
        i = best + 1
    segs, carried, start = [], [], 0
    for p in cuts + [n]:
        seg = carried + items[start:p]
        cut = items[p].invoke if p < n else None
        segs.append((seg, cut, len(carried)))
        carried = [it for it in seg if cut is not None and it.end >= cut]
        start = p
    return segs


# ---------------------------------------------------------------------------------------
# Search

# Memo entries kept per segment before the memo is emptied (about 100 bytes each). The
# memo only saves repeated work, so emptying it bounds memory without changing verdicts.
MEMO_LIMIT = 2_000_000
_FORCED = -1  # stack mark: an op linearized without alternatives (see _run)


class _Timeout(Exception):
    pass


class _Clock:
    def __init__(self, time_limit):
        self.start = time.monotonic()
        self.deadline = self.start + time_limit

    def check(self):
        if time.monotonic() > self.deadline:
            raise _Timeout()

    def elapsed(self):
        return time.monotonic() - self.start


class _Counts:
    """Operations of the key not yet linearized on the current search path, per value
    id: reads that returned it, and writes of it (a skipped optional write counts as
    done). Shared by the chain of segment searches: a suspended search holds exactly the
    configuration it handed on, and a search hands back control only fully unwound."""

    def __init__(self, items, n_values):
        self.reads_left = [0] * n_values
        self.writes_left = [0] * n_values
        for it in items:
            (self.reads_left if it.kind == READ else self.writes_left)[it.value] += 1


class _SegmentSearch:
    """Wing-Gong-Lowe search of one segment, producing its end configurations lazily.

    The segment's operations (those carried over the previous cut first) are numbered in
    invoke order and laid out as a doubly linked list of call and return events sorted
    by time (calls first at equal times). An operation may be linearized next iff its
    call comes before the first return still in the list (no pending operation had to
    finish before it started); linearizing it unlinks both its events. Reaching a return
    means that operation should already have been linearized: backtrack. Once every
    operation that completed before the cut is linearized, the configuration is an end
    configuration: it is handed on, and the search backtracks from it (linearizing more
    spanning operations is left to the next segment). The memo holds configurations
    already explored: the set of linearized operations, kept as (base, bits) with base
    the lowest operation not yet linearized and bits the linearized ones from base up,
    plus the register value, all packed into one int.
    """

    def __init__(self, items, cut, carried, counts, n_values, clock):
        self.items = items
        self.cut = cut
        self.carried = carried
        self.clock = clock
        self.counts = counts
        n = len(items)
        self.base_bits = n.bit_length()  # base is 0..n
        self.value_bits = n_values.bit_length()  # value ids are 0..n_values-1
        events = sorted([(it.invoke, 0, i) for i, it in enumerate(items)]
                        + [(it.end, 1, i) for i, it in enumerate(items)])
        self.tail = tail = 2 * n + 1  # node 0 is the head, events are 1..2n
        self.nxt = list(range(1, tail + 2))
        self.prv = list(range(-1, tail))
        self.is_call = [False] * (tail + 1)
        self.node_op = [-1] * (tail + 1)
        self.call_of = [0] * n
        self.ret_of = [0] * n
        for node, (_, is_ret, i) in enumerate(events, 1):
            self.node_op[node] = i
            if is_ret:
                self.ret_of[i] = node
            else:
                self.is_call[node] = True
                self.call_of[i] = node
        self.kinds = [it.kind for it in items]
        self.vals = [it.value for it in items]
        # 1 for operations that must be linearized before the cut, 0 for spanning ones.
        self.before_cut = [int(cut is None or it.end < cut) for it in items]
        self.spanning = [i for i in range(n) if not self.before_cut[i]]
        # Optional writes with the same value have the same end (rule 5 of _prepare), so
        # two of them that are both invoked are interchangeable: swapping them in any
        # linearization gives another. The search resolves (applies or skips) them in
        # invoke order only, which avoids trying every subset of them.
        self.maybe_before = [-1] * n  # the previous optional write of the same value
        last = {}
        for i, it in enumerate(items):
            if it.kind == MAYBE:
                self.maybe_before[i] = last.get(it.value, -1)
                last[it.value] = i
        self.memo = set()
        self.pending = []  # start configurations not yet searched
        self.starts = []  # every start configuration received, for messages
        self.ends = set()  # end configurations handed on so far
        # The deepest dead end: (depth, op, value, last linearized, pending, whether the
        # op is a write that would have left a value some read still needs).
        self.stuck = None
        self._gen = self._run()

    def add_start(self, config):
        """config: (value id, frozenset of the item indexes already linearized)."""
        self.pending.append(config)
        self.starts.append(config)

    def next_end(self):
        """The next new end configuration, or None when the start configurations given so
        far have no more (the search is then fully unwound)."""
        return next(self._gen)

    def _note_stuck(self, ret_node, state, stack):
        depth = len(stack)
        if self.stuck is not None and depth <= self.stuck[0]:
            return
        last = [self.node_op[e] for e, *_ in stack[-3:]]
        pending, e = [], self.nxt[0]
        while self.is_call[e] and len(pending) < 4:
            pending.append(self.node_op[e])
            e = self.nxt[e]
        o = self.node_op[ret_node]
        needed = (self.kinds[o] != READ and self.vals[o] != state
                  and self.counts.reads_left[state] and not self.counts.writes_left[state])
        self.stuck = (depth, o, state, last, pending, needed)

    def _run(self):
        nxt, prv, is_call, node_op = self.nxt, self.prv, self.is_call, self.node_op
        call_of, ret_of, kinds, vals = self.call_of, self.ret_of, self.kinds, self.vals
        before_cut, spanning, items = self.before_cut, self.spanning, self.items
        maybe_before = self.maybe_before
        reads_left, writes_left = self.counts.reads_left, self.counts.writes_left
        left_of = [reads_left if k == READ else writes_left for k in kinds]
        memo, ends, tail, clock = self.memo, self.ends, self.tail, self.clock
        base_bits, value_bits = self.base_bits, self.value_bits
        steps = 0

        def extend(o, base, lin):
            """(base, lin, memo key without the value) once op o is linearized too."""
            j = o - base
            lin |= 1 << j
            if j == 0:  # advance base past the run of linearized ops
                t = (lin ^ (lin + 1)).bit_length() - 1
                lin >>= t
                base += t
            return base, lin, ((lin << base_bits) | base) << value_bits

        def unlink(c):  # unlink op's call node c and its return node
            r = ret_of[node_op[c]]
            p, q = prv[c], nxt[c]
            nxt[p], prv[q] = q, p
            p, q = prv[r], nxt[r]
            nxt[p], prv[q] = q, p

        def relink(c):  # exact inverse of unlink(c), valid in stack order (dancing links)
            r = ret_of[node_op[c]]
            nxt[prv[r]] = r
            prv[nxt[r]] = r
            nxt[prv[c]] = c
            prv[nxt[c]] = c

        while True:
            if not self.pending:
                yield None
                continue
            state, done = self.pending.pop()
            # The spanning operations the previous segment linearized leave the list; the
            # counts already have them done (that search holds them on its path).
            pre = [o for o, it in enumerate(items) if it.index in done]
            base = lin = prefix = 0
            must_left = sum(before_cut)  # ops left that must precede the cut
            for o in pre:
                unlink(call_of[o])
                base, lin, prefix = extend(o, base, lin)
                must_left -= before_cut[o]
            if prefix | state in memo:  # explored already
                for o in reversed(pre):
                    relink(call_of[o])
                continue
            memo.add(prefix | state)
            stack = []  # (call node, value before, base before, lin before, alternative)
            fresh, entry, alt = True, 0, 0
            while True:
                steps += 1
                if not steps & 1023:
                    clock.check()
                    if len(memo) > MEMO_LIMIT:
                        memo.clear()
                dead = False
                if fresh:  # a configuration reached for the first time
                    if not must_left:  # an end configuration
                        end = (state, frozenset(items[o].index for o in spanning
                                                if o < base or lin >> (o - base) & 1))
                        if end not in ends:
                            ends.add(end)
                            yield end
                        dead = True
                    else:
                        # Two moves go next without trying alternatives, being safe in any
                        # linearization from here: an op that may go next is minimal
                        # (nothing pending must precede it), so moving it to the front
                        # respects real time; and the sequence stays legal:
                        # - a read that returned the current value: reads change nothing;
                        # - a write of an unread value while the register holds one: the
                        #   value does not change here, and where the write was, only a
                        #   write or the end of the history can have followed it (no read
                        #   returns UNREAD), which does not depend on the value before it.
                        first = e = nxt[0]
                        while is_call[e]:
                            o = node_op[e]
                            if vals[o] == state and (kinds[o] == READ or state == UNREAD):
                                break
                            e = nxt[e]
                        if is_call[e]:
                            nb, nl, prefix = extend(o, base, lin)
                            if prefix | state in memo:
                                dead = True
                            else:
                                memo.add(prefix | state)
                                stack.append((e, state, base, lin, _FORCED))
                                unlink(e)
                                left_of[o][vals[o]] -= 1
                                must_left -= before_cut[o]
                                base, lin = nb, nl
                                continue
                        else:
                            entry, alt, fresh = first, 0, False
                if not dead:
                    if is_call[entry]:
                        o = node_op[entry]
                        kind = kinds[o]
                        p = maybe_before[o]
                        # Reads not matching the value cannot go next, nor an optional
                        # write before the previous one of its value is resolved.
                        if kind != READ and (p < base or lin >> (p - base) & 1):
                            v = vals[o]
                            # alternative 0 applies the write, 1 (optional writes) skips it
                            last_alt = 1 if kind == MAYBE and v != state else 0
                            # Applying it would be a dead end if reads of the current value
                            # remain and no write left can bring that value back.
                            if v != state and reads_left[state] and not writes_left[state]:
                                alt = max(alt, 1)
                            if alt <= last_alt:
                                nb, nl, prefix = extend(o, base, lin)
                                for a in range(alt, last_alt + 1):
                                    ns = v if a == 0 else state
                                    if prefix | ns not in memo:
                                        memo.add(prefix | ns)
                                        stack.append((entry, state, base, lin, a))
                                        unlink(entry)
                                        writes_left[v] -= 1
                                        must_left -= before_cut[o]
                                        state, base, lin, fresh = ns, nb, nl, True
                                        break
                                if fresh:
                                    continue
                        entry, alt = nxt[entry], 0
                        continue
                    self._note_stuck(entry, state, stack)  # a return: that op is overdue
                # Backtrack to the latest choice that has alternatives left.
                while stack:
                    e, state, base, lin, a = stack.pop()
                    relink(e)
                    o = node_op[e]
                    left_of[o][vals[o]] += 1
                    must_left += before_cut[o]
                    if a != _FORCED:
                        entry, alt, fresh = e, a + 1, False
                        break
                else:
                    break  # this start configuration is exhausted
            for o in reversed(pre):
                relink(call_of[o])

    def explain(self, names, values, ops):
        """A violation message for a segment that has no end configuration from any start
        configuration; names[id] displays a value id, values[id] is the value (None for
        UNREAD), ops are the key's operations."""
        items = self.items
        t0 = items[self.carried].invoke
        t1 = self.cut if self.cut is not None else max(it.end for it in items)
        starts = ", ".join(sorted({names[s] for s, _ in self.starts}))
        new = len(items) - self.carried
        head = f"no linearization of the {new} op{'s' if new > 1 else ''} invoked in [{t0}, {t1})"
        if self.carried:
            head += f" (and {self.carried} invoked before)"
        head += f" starting from {starts}"
        if self.stuck is None:
            return head
        depth, o, state, last, pending, needed = self.stuck
        block = items[o].op
        holds = names[state]
        writes = [w for w in ops if w.kind != "read" and w.outcome != "fail"]
        if needed:
            reads = [r for r in ops
                     if r.kind == "read" and r.outcome == "ok" and r.value == values[state]]
            later = [r for r in reads if r.invoke > items[o].end]
            if later:
                read = min(later, key=lambda r: r.invoke)
            else:
                read = max(reads, key=lambda r: r.complete)
            msg = (f"{head}: {_describe(block)} must take effect by {items[o].end} but cannot: "
                   f"the register holds {holds}, which {_describe(read)} still has to return, "
                   "and no write left can bring it back")
        elif block.kind == "read":
            msg = f"{head}: {_describe(block)} cannot be placed, the register holds {holds} there"
            mine = [w for w in writes if w.value == block.value]
            if mine:
                msg += (f"; {_fmt_value(block.value)} written by "
                        + ", ".join(map(_describe, mine[:2])))
            before = [w for w in writes if w.outcome == "ok" and w.complete < block.invoke]
            if before:
                latest = max(before, key=lambda w: w.complete)
                if latest.value != block.value:
                    msg += f"; last write completed before the read: {_describe(latest)}"
        else:
            msg = (f"{head}: no order before {_describe(block)} completes satisfies the reads; "
                   f"the longest attempt ({depth} ops) leaves {holds}")
        if last:
            msg += "; last linearized: " + ", ".join(_describe(items[i].op) for i in last)
        others = [i for i in pending if i != o]
        if others:
            msg += "; concurrent: " + ", ".join(_describe(items[i].op) for i in others)
        return msg


def _check_key(ops, init, time_limit):
    """(verdict, explanation) for one key's operations."""
    clock = _Clock(time_limit)
    items, why = _prepare(ops, init)
    if why is not None:
        return "violation", why
    # Values become small ints (they hash fast in the memo). Every value no ok read
    # returned becomes the same id, UNREAD: the search compares values only with what
    # reads returned, so such values are interchangeable, and configurations that differ
    # only in which of them the register holds are one.
    ids, names, values = {}, ["an unread value"], [None]
    for it in items:
        if it.kind == READ and it.value not in ids:
            ids[it.value] = len(names)
            names.append(_fmt_value(it.value))
            values.append(it.value)
    for it in items:
        it.value = ids.get(it.value, UNREAD)
    if not items:
        return "ok", ""
    segs = _segments(items)
    counts = _Counts(items, len(names))
    # Lazy chaining: searches[k] asks searches[k-1] for another end configuration only
    # when it searched all those it has without handing on one that got through.
    searches = []
    k, start = 0, (ids.get(init, UNREAD), frozenset())
    try:
        while True:
            clock.check()  # the searches check it too, but only every 1024 steps each
            if k == len(searches):
                searches.append(_SegmentSearch(*segs[k], counts, len(names), clock))
            if start is not None:
                searches[k].add_start(start)
            end = searches[k].next_end()
            if end is not None:
                if k == len(segs) - 1:
                    return "ok", ""
                k, start = k + 1, end
            elif k == 0:
                # Every segment is exhausted: the first one that never found an end
                # configuration was searched from every one possible before it.
                culprit = next(s for s in searches if not s.ends)
                return "violation", culprit.explain(names, values, ops)
            else:
                k, start = k - 1, None
    except _Timeout:
        return "unknown", f"time limit after {clock.elapsed():.1f} s"


class History:
    """Records added one at a time, validated and kept compactly (an Op each, the
    dict itself is not kept), so that histories of millions of operations fit in
    memory; check() then checks them key by key."""

    def __init__(self):
        self.per_key, self.inits, self.n = defaultdict(list), {}, 0

    def add(self, rec):
        self.n += 1
        where = (f"line {rec['_line']}" if isinstance(rec, dict) and "_line" in rec
                 else f"op #{self.n}")
        parsed = _parse(rec, where)
        if isinstance(parsed, tuple):
            _, key, value = parsed
            if key in self.inits:
                raise HistoryError(f"{where}: second init line for key {json.dumps(key)}")
            self.inits[key] = value
            self.per_key.setdefault(key, [])
        else:
            parsed.key = sys.intern(parsed.key)
            if not isinstance(rec, dict) or "_line" not in rec:
                parsed.where = self.n  # an int until a message needs it
            self.per_key[parsed.key].append(parsed)

    def check(self, time_limit):
        """Yields (key, number of ops, verdict, explanation) per key, in key order."""
        for key in sorted(self.per_key):
            ops = self.per_key[key]
            verdict, why = _check_key(ops, self.inits.get(key), time_limit)
            yield key, len(ops), verdict, why


def _group(records):
    """Validates records; returns a History holding them."""
    h = History()
    for rec in records:
        h.add(rec)
    return h


def _iter_check(records, time_limit):
    """Yields (key, number of ops, verdict, explanation) per key, in key order."""
    return _group(records).check(time_limit)


def check_history(ops, time_limit=60.0):
    """Checks a history: an iterable of records (dicts, as in a history file).

    Returns {key: (verdict, explanation)}, verdict "ok", "violation" or "unknown"
    (time_limit seconds per key ran out); the explanation is "" for ok. Raises
    HistoryError for malformed records.
    """
    return {key: (verdict, why) for key, _, verdict, why in _iter_check(ops, time_limit)}


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Check a JSON-lines register history for linearizability.")
    ap.add_argument("history", help="JSON-lines history file")
    ap.add_argument("--time-limit", type=float, default=60.0, metavar="SECONDS",
                    help="search time per key before giving up with 'unknown' (default 60)")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON object instead of text lines")
    args = ap.parse_args(argv)
    if not args.time_limit > 0:
        ap.error("--time-limit must be positive")
    try:
        history = load_history(args.history)
        results = []
        for key, n, verdict, why in history.check(args.time_limit):
            results.append({"key": key, "ops": n, "verdict": verdict, "explanation": why})
            if not args.json:
                if verdict == "ok":
                    print(f"{key} ok {n}", flush=True)
                else:
                    print(f"{key} {verdict}: {why}", flush=True)
    except HistoryError as e:
        print(f"lincheck: {e}", file=sys.stderr)
        return 2
    violations = sum(r["verdict"] == "violation" for r in results)
    unknown = sum(r["verdict"] == "unknown" for r in results)
    if args.json:
        print(json.dumps({"keys": len(results), "violations": violations,
                          "unknown": unknown, "results": results}))
    else:
        print(f"lincheck: {len(results)} keys, {violations} violations, {unknown} unknown")
    if violations:
        return 1
    return 3 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
