#!/usr/bin/env python3
"""promcheck.py - a strict checker of the Prometheus text exposition format
(version 0.0.4), for the tests of /metrics and .raftfs/metrics.

    promcheck.py [FILE]      (standard input without FILE)

Exits 0 when the text is well formed, else 1 with one line per problem
(line number first). What it holds the text to:
  - every line is a sample, a comment, or empty; the text ends with a newline
  - "# HELP NAME TEXT" and "# TYPE NAME TYPE" (counter, gauge, histogram,
    summary, untyped) at most once per family, both before its first
    sample; every sample's family has both
  - a family's samples are contiguous (no family starts twice)
  - metric and label names are legal, label values are quoted with only
    \\\\, \\" and \\n as escapes, no label twice in a sample, no trailing comma
  - values are floats (or NaN, +Inf, -Inf), an optional integer timestamp
  - no series (name and label set) twice
  - a counter's samples are not negative; a histogram has only _bucket
    (with le), _sum and _count samples, its buckets' le increase and end
    with +Inf, their counts never decrease, and +Inf equals _count
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf|NaN)")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Problem(Exception):
    pass


def parse_labels(s, i):
    """Labels from s[i] == '{'; returns (dict, index after '}')."""
    labels = {}
    i += 1
    if i < len(s) and s[i] == "}":
        return labels, i + 1
    while True:
        m = LABEL.match(s, i)
        if not m:
            raise Problem("bad label name at column %d" % (i + 1))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Problem("label %s: want =\"" % name)
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise Problem("label %s: unterminated value" % name)
            c = s[i]
            if c == "\\":
                if i + 1 >= len(s) or s[i + 1] not in '\\"n':
                    raise Problem("label %s: bad escape" % name)
                val.append({"\\": "\\", '"': '"', "n": "\n"}[s[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Problem("label %s: newline in value" % name)
            else:
                val.append(c)
                i += 1
        if name in labels:
            raise Problem("label %s twice" % name)
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
            if i < len(s) and s[i] == "}":
                raise Problem("trailing comma in labels")
            continue
        if i < len(s) and s[i] == "}":
            return labels, i + 1
        raise Problem("labels: want , or } at column %d" % (i + 1))


def to_float(tok):
    if not FLOAT.fullmatch(tok):
        raise Problem("bad value %r" % tok)
    return float(tok.replace("Inf", "inf").replace("NaN", "nan"))


def family_of(name, types):
    """The family a sample name belongs to (histogram/summary suffixes)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                if suffix == "_bucket" and types[base] != "histogram":
                    continue
                return base
    return name


def check(text):
    problems = []
    if text and not text.endswith("\n"):
        problems.append("end: the text does not end with a newline")
    helps, types = {}, {}
    sampled = set()  # families with samples
    closed = set()  # families whose samples ended
    current = None
    series = set()
    hist = {}  # family -> {"buckets": [(le, v)], "count": v}
    for no, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
        try:
            if line == "":
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    if len(parts) < 3 or not NAME.fullmatch(parts[2]):
                        raise Problem("# %s without a good metric name" % parts[1])
                    fam = parts[2]
                    if fam in sampled:
                        raise Problem("# %s %s after its samples" % (parts[1], fam))
                    if parts[1] == "HELP":
                        if fam in helps:
                            raise Problem("HELP %s twice" % fam)
                        helps[fam] = parts[3] if len(parts) > 3 else ""
                    else:
                        if fam in types:
                            raise Problem("TYPE %s twice" % fam)
                        if len(parts) != 4 or parts[3] not in TYPES:
                            raise Problem("TYPE %s: bad type" % fam)
                        types[fam] = parts[3]
                continue
            m = NAME.match(line)
            if not m:
                raise Problem("bad metric name")
            name = m.group(0)
            i = m.end()
            labels = {}
            if i < len(line) and line[i] == "{":
                labels, i = parse_labels(line, i)
            if i >= len(line) or line[i] != " ":
                raise Problem("want a space before the value")
            rest = line[i + 1:].split(" ")
            if len(rest) not in (1, 2) or "" in rest:
                raise Problem("want VALUE [TIMESTAMP] after the labels")
            value = to_float(rest[0])
            if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
                raise Problem("bad timestamp %r" % rest[1])
            fam = family_of(name, types)
            if fam not in types:
                raise Problem("%s: no TYPE for its family %s" % (name, fam))
            if fam not in helps:
                raise Problem("%s: no HELP for its family %s" % (name, fam))
            if fam != current:
                if fam in closed or fam in sampled:
                    raise Problem("%s: samples of family %s are not together" % (name, fam))
                if current is not None:
                    closed.add(current)
                current = fam
            sampled.add(fam)
            key = (name, tuple(sorted(labels.items())))
            if key in series:
                raise Problem("series %s%s twice" % (name, labels or ""))
            series.add(key)
            kind = types[fam]
            if kind == "counter" and (value < 0 or math.isnan(value)):
                raise Problem("counter %s is %s" % (name, rest[0]))
            if kind == "histogram":
                if name == fam:
                    raise Problem("histogram %s: a sample without _bucket/_sum/_count" % fam)
                h = hist.setdefault(fam, {"buckets": [], "count": None})
                if name.endswith("_bucket"):
                    if "le" not in labels:
                        raise Problem("%s without le" % name)
                    h["buckets"].append((to_float(labels["le"]), value, no))
                elif name.endswith("_count"):
                    h["count"] = (value, no)
            elif "le" in labels and kind != "untyped":
                raise Problem("%s: le label outside a histogram" % name)
        except Problem as e:
            problems.append("line %d: %s: %s" % (no, e, line))
    for fam, h in hist.items():
        bs = h["buckets"]
        if not bs or not math.isinf(bs[-1][0]):
            problems.append("histogram %s: no le=\"+Inf\" bucket last" % fam)
        for (le1, v1, _), (le2, v2, no) in zip(bs, bs[1:]):
            if le2 <= le1:
                problems.append("line %d: histogram %s: le not increasing" % (no, fam))
            if v2 < v1:
                problems.append("line %d: histogram %s: bucket counts decrease" % (no, fam))
        if h["count"] is None:
            problems.append("histogram %s: no _count" % fam)
        elif bs and h["count"][0] != bs[-1][1]:
            problems.append("histogram %s: _count is not the +Inf bucket" % fam)
    for fam in types:
        if fam not in helps:
            problems.append("family %s: TYPE without HELP" % fam)
    return problems


def main():
    if len(sys.argv) > 2:
        print("usage: promcheck.py [FILE]", file=sys.stderr)
        return 2
    data = open(sys.argv[1], "rb").read() if len(sys.argv) == 2 else sys.stdin.buffer.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        print("promcheck: not UTF-8")
        return 1
    problems = check(text)
    for p in problems:
        print("promcheck: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
