#!/usr/bin/env python3
"""Per-request self cost by function of one or two callgrind dumps (profile.sh KEEP=DIR).

Usage:
  cg_self.py A.out REQS_A [B.out REQS_B] [--event Ir|I1mr|D1mr|D1mw] [--top N]

With one dump: its functions by self cost per request. With two: the difference B - A per
function, largest first (e.g. A = errgate-small, B = errgate-inband-ok, or the same path with
the access log off and on). REQS_* are the requests profile.sh printed for that dump. The
"total" line is the dump's summary per request. Cache events need VALGRIND_ARGS=--cache-sim=yes.

Reads the callgrind format directly (name compression, `calls=` lines whose next cost line is
the callee's inclusive cost, not self cost): on these dumps callgrind_annotate 3.19 attributes
everything to `clone`.
"""
import argparse
import collections
import re

NAMED = re.compile(r"(c?fn)=\((\d+)\)(?: (.*))?")


def self_costs(path, event):
    names, fn, skip, events = {}, None, False, []
    cost = collections.Counter()
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("events:"):
                events = line.split()[1:]
                continue
            m = NAMED.match(line)
            if m:
                kind, ident, name = m.groups()
                if name:
                    names[ident] = name
                if kind == "fn":
                    fn = names.get(ident, ident)
                continue
            if line.startswith("calls="):
                skip = True
                continue
            if line[:1].isdigit() or line[:1] in ("+", "-", "*"):
                if skip:
                    skip = False
                    continue
                vals = line.split()[1:]
                i = events.index(event)
                if i < len(vals):
                    cost[fn] += int(vals[i])
    return cost


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("args", nargs="+")
    ap.add_argument("--event", default="Ir")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    if len(a.args) not in (2, 4):
        ap.error("give A.out REQS_A [B.out REQS_B]")
    dumps = [(self_costs(a.args[i], a.event), float(a.args[i + 1])) for i in range(0, len(a.args), 2)]
    per = [{k: v / r for k, v in c.items()} for c, r in dumps]
    print("total " + "  ".join(f"{sum(p.values()):.0f}" for p in per) + f"  ({a.event} per request)")
    if len(per) == 1:
        rows = sorted(per[0].items(), key=lambda kv: -kv[1])
        for k, v in rows[: a.top]:
            print(f"{v:10.1f}  {k}")
        return
    x, y = per
    rows = sorted(((y.get(k, 0) - x.get(k, 0), k) for k in set(x) | set(y)), key=lambda r: -abs(r[0]))
    print(f"{'B - A':>10} {'A':>10} {'B':>10}  function")
    for d, k in rows[: a.top]:
        print(f"{d:10.1f} {x.get(k, 0):10.1f} {y.get(k, 0):10.1f}  {k}")


if __name__ == "__main__":
    main()
