"""bench_verbs_tables: scripts/bench-verbs's tables from one VM run's raw outputs.

usage: bench_verbs_tables.py OUT PARTS ROUNDS LOAD_BEFORE LOAD_AFTER VM_SECONDS
  OUT: the run's folder (results/bench/<time>-verbs); PARTS: bw,lat,opts,mpi
Prints the tables as Markdown and writes OUT/measured.json (measured.py's
layout; tables perftest, all_gather, latency, options, mpi: those of the
parts that ran). Every cell is the median over the rounds [range]; a ratio is
taken per round (collbench against the perftest runs just before and after
it, or on against off in the same round) before the median.
"""
import json
import math
import os
import sys

import measured

AR_TARGET, AG_TARGET, LAT_TARGET = 0.85, 0.9, 1.5
TARGET_SIZES = (4 << 20, 64 << 20)   # the targets hold at 4-64 MiB


def load(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)




def header(doc, key):   # what rank 0's header says for a transport property
    return doc["ranks"][0]["props"].get(key) if doc and doc.get("ranks") else None


spread, ratios, busbw = measured.spread, measured.ratios, measured.busbw


def cols(first, *spec):   # first: the key column(s), a dict or a list of dicts
    return (first if isinstance(first, list) else [first]) + [{"name": n, "format": f} for n, f in spec]


SIZE = {"name": "size", "format": "iec"}


class Run:
    def __init__(self, out, rounds):
        self.out, self.rounds = out, rounds

    def json(self, name, r):
        return load(f"{self.out}/{name}.r{r}.json")

    def lines(self, name):   # the fields of each line of a file of the VM run, [] if it is missing
        path = f"{self.out}/{name}"
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line.split() for line in f if line.strip()]

    def perftest(self, name, scale):   # {run: {size: value}} from "RUN SIZE VALUE" lines
        runs = {}
        for run, size, val in self.lines(name):
            if float(val) > 0:   # perftest prints 0.00 when a run broke off (see its output)
                runs.setdefault(int(run), {})[int(size)] = float(val) * scale
        return runs

    def around(self, runs, r, key):   # perftest's mean just before and after collbench's round r
        v = [runs[k][key] for k in (r, r + 1) if key in runs.get(k, {})]
        return sum(v) / len(v) if v else None


def bandwidth_tables(run, tables):
    mib = 1048576 / 1e9
    uni, bidi = run.perftest("perftest.txt", mib), run.perftest("perftest-bidi.txt", mib / 2)
    rounds = range(1, run.rounds + 1)
    ours = [busbw(run.json("ours", r)) for r in rounds]
    gather = [busbw(run.json("gather", r)) for r in rounds]
    sizes = sorted(set().union(*ours, *gather))
    # With 2 ranks each rank sends and receives `size` bytes per all_reduce
    # (size / 2 per all_gather) at the same time. ib_write_bw -b runs the same
    # pattern (both sides write at once): busbw / its per-direction rate is
    # the like-for-like ratio; one-directional ib_write_bw is kept.
    rows, grows = [], []
    for s in sizes:
        b = [run.around(bidi, r, s) for r in rounds]
        u = [run.around(uni, r, s) for r in rounds]
        o, g = [x.get(s) for x in ours], [x.get(s) for x in gather]
        rows.append([s, spread(o), spread(b), spread(ratios(o, b)), spread(u), spread(ratios(o, u))])
        grows.append([s, spread(g), spread(b), spread(ratios(g, b))])
    lo, hi = (measured.fmt_iec(x) for x in TARGET_SIZES)
    tables["perftest"] = {"columns": cols(SIZE, ("all_reduce busbw GB/s", ".3f"),
                                          ("ib_write_bw -b per direction GB/s", ".3f"),
                                          (f"busbw / -b per direction (target >= {AR_TARGET} at {lo}-{hi})", ".2f"),
                                          ("ib_write_bw one direction GB/s", ".3f"), ("busbw / one direction", ".2f")),
                          "rows": rows}
    tables["all_gather"] = {"columns": cols(SIZE, ("all_gather busbw GB/s", ".3f"),
                                            ("ib_write_bw -b per direction GB/s", ".3f"),
                                            (f"busbw / -b per direction (target >= {AG_TARGET} at {lo}-{hi})",
                                             ".2f")),
                            "rows": grows}
    return ours


def verdicts(tables):   # one line per target: met or not, on the medians
    out = []
    for name, target, what in (("perftest", AR_TARGET, "all_reduce"), ("all_gather", AG_TARGET, "all_gather")):
        cells = [(row[0], row[3]) for row in tables.get(name, {}).get("rows", [])
                 if TARGET_SIZES[0] <= row[0] <= TARGET_SIZES[1] and row[3]]
        if cells:
            low = min(c["median"] for _, c in cells)
            out.append(f"{what} busbw / -b per direction at 4-64 MiB: lowest median {low:.2f} "
                       f"({'met' if low >= target else 'missed'}: target >= {target})")
    lat = tables.get("latency", {}).get("rows", [])
    if lat and lat[0][5]:
        m = lat[0][5]["median"]
        out.append(f"8 B all_reduce p50 / ib_write_lat typical: median {m:.2f} "
                   f"({'met' if m <= LAT_TARGET else 'missed'}: target <= {LAT_TARGET})")
    return out


def typicals(run):   # {run: ib_write_lat's typical us} from "RUN t_typical t_min" lines
    vals = {int(r): float(t) for r, t, _ in run.lines("perftest-lat.txt")}
    return {r: t for r, t in vals.items() if math.isfinite(t) and t > 0}


def latency_table(run, tables):
    # ib_write_lat ping-pongs and prints half the round trip, the time one
    # 2-byte write takes to land: what an exchange of 8 B between 2 ranks
    # (each writes to the other at once) cannot beat.
    typical = typicals(run)
    rounds = range(1, run.rounds + 1)
    docs = [run.json("lat", r) for r in rounds]
    names = [r["algo_asked"] for r in docs[0]["results"]] if docs[0] else []
    rows = []
    for i, name in enumerate(names):
        res = [d["results"][i] if d and len(d["results"]) > i else None for d in docs]
        p50 = [x["out_of_place"]["per_iter"]["p50_us"] if x else None for x in res]
        mn = [x["out_of_place"]["per_iter"]["min_us"] if x else None for x in res]
        mean = [x["out_of_place"]["time_us"] if x else None for x in res]
        ran = sorted({x["algo"] for x in res if x})
        t = [run.around({k: {0: v} for k, v in typical.items()}, r, 0) for r in rounds]
        label = f"{name}>{'/'.join(ran)}" if name == "auto" else name
        rows.append([label, spread(p50), spread(mn), spread(mean), spread(t), spread(ratios(p50, t)),
                     spread(ratios(mean, t))])
    first = {"name": "8 B all_reduce, 2 ranks: --algo", "align": "l"}
    tables["latency"] = {"columns": cols(first, ("p50 us", ".1f"), ("min us", ".1f"),
                                         ("mean back to back us", ".1f"), ("ib_write_lat -s 2 typical us", ".1f"),
                                         (f"p50 / ib_write_lat (target <= {LAT_TARGET}, auto)", ".2f"),
                                         ("mean / ib_write_lat", ".2f")),
                         "rows": rows}


def packets_table(run, tables):
    # rxe0's sent_pkts (data, clear-to-send writes and ACKs alike) per
    # operation: on rxe each packet costs CPU time of the 2 vCPUs the ranks
    # poll on, so latency follows the packet count. Lines "RUN PACKETS OPS".
    rounds = range(1, run.rounds + 1)
    per = lambda name: {int(r): int(p) / int(n) for r, p, n in run.lines(name) if int(n)}  # noqa: E731
    ping, ours = per("perftest-lat-pkts.txt"), per("lat-pkts.txt")
    typical = typicals(run)
    alone = [run.json("lat-pkts", r) for r in rounds]
    mean = [d["results"][0]["out_of_place"]["time_us"] if d else None for d in alone]
    rows = [["ib_write_lat -s 2: one ping-pong (a write each way, one after the other)",
             spread([ping.get(r) for r in range(1, run.rounds + 2)]),
             spread([2 * t for t in typical.values()])],
            ["8 B all_reduce, --algo rd, 2 ranks, back to back (-I 0)", spread([ours.get(r) for r in rounds]),
             spread(mean)]]
    tables["latency_packets"] = {"columns": cols({"name": "operation", "align": "l"},
                                                 ("rxe0 packets sent per operation", ".1f"),
                                                 ("time per operation us", ".1f")),
                                 "rows": rows}


OPTIONS = (("split", "`--ib-split-data` (with `--qps 2`)", "split_data"),
           ("ar", "`--ib-ar`", "adaptive_routing"),
           ("ro", "`--ib-relaxed-ordering`", "relaxed_ordering"))


def options_table(run, tables, ours):
    rounds = range(1, run.rounds + 1)
    rows, size = [], None
    for key, label, prop in OPTIONS:
        off = [run.json(f"opt-{key}-off", r) for r in rounds]
        on = [run.json(f"opt-{key}-on", r) for r in rounds]
        bw_off = [next(iter(busbw(d).values()), None) for d in off]
        bw_on = [next(iter(busbw(d).values()), None) for d in on]
        size = size or next((d["results"][0]["size"] for d in off + on if d), None)
        default = [x.get(size) for x in ours] if ours else []
        says = lambda docs: next((header(d, prop) for d in docs if header(d, prop)), None)  # noqa: E731
        rows.append([label, says(on), says(off), spread(bw_off), spread(bw_on), spread(ratios(bw_on, bw_off)),
                     spread(default)])
    first = {"name": f"option, all_reduce {measured.fmt_iec(size or 0)}, 2 ranks, ring", "align": "l"}
    keys = [first, {"name": "header with on", "align": "l"}, {"name": "header with off", "align": "l"}]
    tables["options"] = {"columns": cols(keys, ("busbw off GB/s", ".3f"), ("busbw on GB/s", ".3f"),
                                         ("on / off (same round)", ".2f"),
                                         ("the defaults' busbw (bw sweep) GB/s", ".3f")),
                         "rows": rows}


def mpi_table(run, tables, ours, notes):
    rounds = range(1, run.rounds + 1)
    out = run.out
    mpi = [busbw(run.json("mpi", r)) for r in rounds]
    rows = []
    if any(mpi) and not os.path.exists(f"{out}/mpi.failed"):
        pkts = [open(f"{out}/mpi.r{r}.rxe-pkts").read().strip() for r in rounds
                if os.path.exists(f"{out}/mpi.r{r}.rxe-pkts")]
        notes.append(f"rxe0 sent_pkts per MPI run +{', +'.join(pkts)}")
        for s in sorted(set().union(*ours)):
            o, m = [x.get(s) for x in ours], [x.get(s) for x in mpi]
            rows.append([s, spread(o), spread(m), spread(ratios(o, m))])
    else:
        why = open(f"{out}/mpi.failed").read().strip() if os.path.exists(f"{out}/mpi.failed") else "no result"
        notes.append(f"no MPI number: {why}")
    tables["mpi"] = {"columns": cols(SIZE, ("collbench busbw GB/s", ".3f"), ("MPI_Allreduce busbw GB/s", ".3f"),
                                     ("collbench / MPI (same round)", ".2f")), "rows": rows}


RUNS = (("ours", "all_reduce sweep"), ("gather", "all_gather sweep"), ("lat", "8 B"), ("lat-pkts", "8 B rd"),
        ("opt-split-off", "split off"), ("opt-split-on", "split on"), ("opt-ar-off", "ar off"),
        ("opt-ar-on", "ar on"), ("opt-ro-off", "ro off"), ("opt-ro-on", "ro on"))


def wire_note(run):
    """rxe0's error counters over each collbench run (the header's `# wire:`
    footer; both ranks share rxe0, so rank 0's): a retransmission waits out
    the QP's timeout (--ib-timeout 20: 4.3 s on rxe), and a few of them
    decide a run's time."""
    parts = []
    for name, label in RUNS:
        per_round = []
        for r in range(1, run.rounds + 1):
            doc = run.json(name, r)
            if not doc:
                continue
            wire = (doc.get("wire") or [{}])[0]
            counts = {c["counter"]: c["delta"] for c in wire.get("counters", []) if c.get("kind") == "error"}
            per_round.append(", ".join(f"{k} +{v}" for k, v in sorted(counts.items())) or "none")
        if any(x != "none" for x in per_round):
            parts.append(f"{label}: {' / '.join(per_round)}")
    text = "rxe0 error counters per collbench run (round by round): " + "; ".join(parts) if parts else \
        "no rxe0 error counter moved in any collbench run"
    perftest = run.lines("perftest-retries.txt")   # "NAME DELTA" per perftest run
    if perftest:
        total = sum(int(n) for _, n in perftest)
        text += f"; rxe0 completer_retry_err over all {len(perftest)} perftest runs +{total}"
    return text


def main(argv):
    out, parts, rounds = argv[1], argv[2].split(","), int(argv[3])
    load_before, load_after, vm_secs = argv[4], argv[5], argv[6]
    run, tables, notes = Run(out, rounds), {}, []
    notes.append(wire_note(run))
    ours = bandwidth_tables(run, tables) if "bw" in parts else []
    if "lat" in parts:
        latency_table(run, tables)
        packets_table(run, tables)
    if "opts" in parts:
        options_table(run, tables, ours)
    if "mpi" in parts:
        mpi_table(run, tables, ours, notes)
    print(f"\n## bench-verbs: 2 ranks on rxe0 (one VM), {rounds} round{'s' if rounds != 1 else ''}\n")
    print(f"Host load average (1, 5, 15 min) before: {load_before}, after: {load_after}; VM run {vm_secs} s. "
          "Each cell: median over rounds [range].\n")
    for name, table in tables.items():
        if table["rows"]:
            print(f"### {name}\n")
            print("\n".join(measured.table_lines(table)) + "\n")
    for line in verdicts(tables) + notes:
        print(f"- {line}")
    doc = measured.finish(tables, f"{out}/run.json", "scripts/bench-verbs", "scripts/bench-verbs")
    vm = open(f"{out}/vm.txt").read().strip("# \n") if os.path.exists(f"{out}/vm.txt") else ""
    doc["run"]["note"] = "; ".join(x for x in ([f"in the VM: {vm}"] if vm else []) +
                                   [doc["run"].get("note", ""), f"VM run {vm_secs} s"] + notes +
                                   [f"each cell the median over {rounds} round{'s' if rounds != 1 else ''} [range]"]
                                   if x)
    measured.write(f"{out}/measured.json", doc)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
