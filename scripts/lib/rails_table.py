#!/usr/bin/python3
"""scripts/bench-rails' tables from its raw outputs: rails_table.py OUT ROUNDS.

Reads OUT/{coll}.{setup}.r{round}.json / .pkts (the VMs) and
OUT/netns.{transport}.r{round}.json (netns hosts), prints the tables as
Markdown and writes OUT/measured.json (with OUT/run.json's date, commit,
machine). Exit 1 when a run left no result or an auto run sent a host-local
hop through a NIC (so the bench cannot quietly report a broken setup)."""
import json
import os
import sys

import measured

SETUPS = {"auto2": "auto, 2 rails", "auto1": "auto, 1 rail (--hca rxe0)", "verbs1": "verbs, 1 rail (--hca rxe0)"}
COLLS = ("all_reduce", "all_gather")


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


spread, ratios, busbw = measured.spread, measured.ratios, measured.busbw


def counts(vals):   # a counter's cell: 0 is a figure (a rail that sent nothing)
    return measured.spread(vals, zero_is_value=True)


def local_hops_off_nic(doc):
    """Whether every rank reaches the other ranks of its host over shm (auto)."""
    ranks = doc["ranks"]
    for r in ranks:
        want = sorted(o["rank"] for o in ranks if o["host"] == r["host"] and o["rank"] != r["rank"])
        got = r["props"].get("shm_peers", "none")
        if got != ",".join(map(str, want)) and not (got == "none" and not want):
            return False
    return True


def size_col():
    return [{"name": "collective", "align": "l"}, {"name": "size", "format": "iec"}]


def vm_tables(out, rounds, problems):
    runs = {(c, s): [load(f"{out}/{c}.{s}.r{r}.json") for r in range(1, rounds + 1)] for c in COLLS for s in SETUPS}
    for (c, s), docs in runs.items():
        if not any(docs):
            problems.append(f"{c} {SETUPS[s]}: no run left a result (see {out}/{c}.{s}.r*.err)")
        if s.startswith("auto") and not all(local_hops_off_nic(d) for d in docs if d):
            problems.append(f"{c} {SETUPS[s]}: a rank reaches a rank of its own VM through a NIC (shm_peers)")
    rows = []
    for c in COLLS:
        bw = {s: [busbw(d) for d in runs[(c, s)]] for s in SETUPS}
        for size in sorted(set().union(*bw["auto2"])):
            got = {s: [b.get(size) for b in bw[s]] for s in SETUPS}
            rows.append([c, size] + [spread(got[s]) for s in SETUPS] +
                        [spread(ratios(got["auto2"], got["auto1"])), spread(ratios(got["auto1"], got["verbs1"]))])
    cols = size_col() + [{"name": f"busbw GB/s, {SETUPS[s]}", "format": ".3f"} for s in SETUPS] + \
        [{"name": "2 rails / 1 rail (auto)", "format": ".2f"}, {"name": "auto / verbs (1 rail)", "format": ".2f"}]
    prows = []
    for c in COLLS:
        for s in SETUPS:
            pk = []
            for r in range(1, rounds + 1):
                try:
                    pk.append([int(v) for v in open(f"{out}/{c}.{s}.r{r}.pkts").read().split()])
                except (OSError, ValueError):
                    pass
            share = [p[1] / (p[0] + p[1]) for p in pk if p[0] + p[1]]
            prows.append([c, SETUPS[s], counts([p[0] for p in pk]), counts([p[1] for p in pk]), counts(share)])
    pcols = [{"name": "collective", "align": "l"}, {"name": "setup", "align": "l"},
             {"name": "node a rxe0 sent packets", "format": ".0f"}, {"name": "node a rxe1 sent packets", "format": ".0f"},
             {"name": "rxe1's share", "format": ".2f"}]
    return {"vms": {"columns": cols, "rows": rows}, "rails": {"columns": pcols, "rows": prows}}


def netns_table(out, rounds, problems):
    docs = {t: [load(f"{out}/netns.{t}.r{r}.json") for r in range(1, rounds + 1)] for t in ("auto", "tcp")}
    if not any(docs["auto"]) and not any(docs["tcp"]):
        return None
    if not all(local_hops_off_nic(d) for d in docs["auto"] if d):
        problems.append("netns all_reduce auto: a rank reaches a rank of its own host over tcp (shm_peers)")
    bw = {t: [busbw(d) for d in docs[t]] for t in docs}
    rows = []
    for size in sorted(set().union(*bw["auto"], *bw["tcp"])):
        a, t = [b.get(size) for b in bw["auto"]], [b.get(size) for b in bw["tcp"]]
        rows.append(["all_reduce", size, spread(a), spread(t), spread(ratios(a, t))])
    cols = size_col() + [{"name": "busbw GB/s, auto (shm inside a host, tcp across)", "format": ".3f"},
                         {"name": "busbw GB/s, --transport tcp", "format": ".3f"},
                         {"name": "auto / tcp", "format": ".2f"}]
    return {"columns": cols, "rows": rows}


def main(out, rounds):
    problems = []
    tables = vm_tables(out, rounds, problems)
    netns = netns_table(out, rounds, problems)
    if netns:
        tables["netns"] = netns
    print(f"\n### 2 VMs x 2 rails, 2 ranks per VM, ring with 2 channels, {rounds} rounds (median [range])\n")
    print("\n".join(measured.table_lines(tables["vms"])))
    print("\n### Node a's packets per rail, per run\n")
    print("\n".join(measured.table_lines(tables["rails"])))
    if netns:
        print("\n### 2 netns hosts x 2 ranks (this machine), all_reduce ring, 2 channels\n")
        print("\n".join(measured.table_lines(netns)))
    for p in problems:
        print(f"bench-rails: {p}", file=sys.stderr)
    doc = measured.finish(tables, f"{out}/run.json", "scripts/bench-rails", "scripts/bench-rails")
    vm = open(f"{out}/vm.txt").read().strip("# \n") if os.path.exists(f"{out}/vm.txt") else ""
    doc["run"]["note"] = "; ".join(([f"in the VMs: {vm}"] if vm else []) + [doc["run"].get("note", "")] +
                                   [f"each cell the median over {rounds} rounds [range], the setups' order turning"])
    measured.write(f"{out}/measured.json", doc)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
