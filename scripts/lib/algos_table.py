"""Tables and plots of scripts/bench-algos' runs.

usage: algos_table.py DIR NP...   (reads DIR/npN.all.rK.PASS.json, runs of every algorithm
                                   in turn (--algo ring,...,auto --mpi-reference), or the older
                                   layout, one run per algorithm: DIR/npN.ALGO[.rK].json;
                                   with repeats, per size the best busbw, time and p50)
Per size: each algorithm's busbw (throughput pass, out-of-place) and p50 (per-
iteration median of the max over ranks), the algorithm auto ran, auto's time
over our best algorithm's (throughput time, the mean over iterations; <= 1.10
is the target) and the same for p50 (the median: with more ranks than cores
the mean carries the scheduler's stalls); "choice/best time" is the time of
the algorithm auto chose, in that algorithm's own run, over the best: what the
choice costs, without the noise between auto's run and the others (auto adds
nothing to the algorithm it runs: it chooses once per size, before timing);
and MPI's
p50 and busbw over auto's. Writes DIR/algorithms-npN.svg (busbw and p50 per size,
one line per algorithm and MPI) and DIR/measured.json, the tables with the run's
metadata from DIR/run.json (scripts/lib/measured.py: what `scripts/bench-algos
--record` keeps under results/measured/ for the docs).
"""
import glob
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from cb_files import read_json, write_file  # noqa: E402
import measured  # noqa: E402

OURS = ["ring", "tree", "rd", "rabenseifner", "direct"]
ALGOS = OURS + ["auto", "mpi"]
COLORS = {"ring": "#1f77b4", "tree": "#2ca02c", "rd": "#d62728", "rabenseifner": "#9467bd",
          "direct": "#8c564b", "auto": "#000000", "mpi": "#ff7f0e"}


def add(out, r):
    """Fold one JSON result into out[size]: of the repeats, the fastest (on a
    shared machine other jobs only ever slow a run down), with the algorithm
    auto ran in that repeat (auto may choose differently in another); p50 the
    lowest of any repeat."""
    o = r["out_of_place"]
    new = {"bw": o["busbw_gbps"], "t": o["time_us"],
           "p50": (o.get("per_iter") or {}).get("p50_us"), "algo": r.get("algo", "?")}
    old = out.get(r["size"])
    if old:
        p50 = min(old["p50"] or 1e30, new["p50"] or 1e30)
        new = dict(old if old["t"] <= new["t"] else new, p50=p50)
    out[r["size"]] = new


def load(directory, np):
    """runs[algo][size] from the runs with every algorithm in turn (each
    result says which --algo entry it was: algo_asked), else from one run per
    algorithm."""
    runs = {a: {} for a in ALGOS}
    for path in sorted(glob.glob(f"{directory}/np{np}.all.r*.json")):
        for r in read_json(path)["results"]:
            if r.get("algo_asked") in runs:
                add(runs[r["algo_asked"]], r)
    if any(runs.values()):
        return runs
    for algo in ALGOS:
        for path in sorted(glob.glob(f"{directory}/np{np}.{algo}.json") +
                           glob.glob(f"{directory}/np{np}.{algo}.r*.json")):
            for r in read_json(path)["results"]:
                add(runs[algo], r)
    return runs


def fmt_size(s):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if s >= div and s % div == 0:
            return f"{s // div}{unit}"
    return str(s)


def table(np, runs):
    """The table of one rank count: a measured.py table (numbers, not text)."""
    print(f"\n### all_reduce, {np} ranks: busbw GB/s / p50 us\n")
    columns = ([{"name": "size", "format": "size"}] + [{"name": a, "format": ".3g"} for a in ALGOS] +
               [{"name": "auto ran", "align": "l"}] +
               [{"name": n, "format": ".2f"} for n in ("auto/best time", "auto/best p50", "choice/best time",
                                                       "MPI/auto p50", "auto/MPI busbw")])
    rows = []
    for size in sorted(runs["auto"]):
        cells = []
        for a in ALGOS:
            r = runs[a].get(size)
            cells.append([r["bw"], r["p50"]] if r and r["p50"] else None)
        ours = [runs[a][size]["t"] for a in OURS if size in runs[a]]
        auto, mpi = runs["auto"][size], runs["mpi"].get(size)
        best = min(ours) if ours else None
        ours_p50 = [runs[a][size]["p50"] for a in OURS if size in runs[a] and runs[a][size]["p50"]]
        best_p50 = auto["p50"] / min(ours_p50) if ours_p50 and auto["p50"] else None
        chosen = runs.get(auto["algo"], {}).get(size)
        choice = chosen["t"] / best if chosen and best else None
        lat = mpi["p50"] / auto["p50"] if mpi and auto["p50"] else None
        bw = auto["bw"] / mpi["bw"] if mpi and mpi["bw"] else None
        rows.append([size] + cells + [auto["algo"], auto["t"] / best if best else None, best_p50, choice, lat, bw])
    t = {"columns": columns, "rows": rows}
    print("\n".join(measured.table_lines(t)))
    return t


def plot(directory, np, runs):
    """busbw and p50 per size, one line per algorithm and MPI: DIR/algorithms-npN.svg."""
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"   # text as text: smaller files, searchable
    import matplotlib.pyplot as plt
    sizes = sorted(runs["auto"])
    if len(sizes) < 2:
        return
    fig, (bw_ax, lat_ax) = plt.subplots(1, 2, figsize=(11, 4.2))
    for a in ALGOS:
        pts = [(s, runs[a][s]) for s in sizes if s in runs[a]]
        style = {"color": COLORS[a], "linestyle": "--" if a == "mpi" else "-",
                 "linewidth": 2.5 if a == "auto" else 1.5, "marker": "o", "markersize": 3, "label": a}
        bw_ax.plot([s for s, _ in pts], [r["bw"] for _, r in pts], **style)
        lat_pts = [(s, r["p50"]) for s, r in pts if r["p50"]]
        lat_ax.plot([s for s, _ in lat_pts], [v for _, v in lat_pts], **style)
    for ax, title in ((bw_ax, "busbw (GB/s)"), (lat_ax, "p50 latency (us), log scale")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes[::2], [fmt_size(s) for s in sizes[::2]])
        ax.set_xlabel("size (bytes)")
        ax.set_title(f"all_reduce {title}, {np} ranks")
        ax.grid(True, alpha=0.3)
    lat_ax.set_yscale("log")
    bw_ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    write_file(f"{directory}/algorithms-np{np}.svg", buf.getvalue())
    plt.close(fig)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tables = {}
    for np in argv[2:]:
        runs = load(argv[1], np)
        if not runs["auto"]:
            print(f"no auto results for {np} ranks in {argv[1]} (np{np}.all.r*.json)", file=sys.stderr)
            return 1
        tables[f"np{np}"] = table(np, runs)
        plot(argv[1], np, runs)
    measured.write(os.path.join(argv[1], "measured.json"),
                   measured.finish(tables, os.path.join(argv[1], "run.json"), "scripts/bench-algos",
                                   "scripts/bench-algos"))
    return 0


if __name__ == "__main__":
    sys.exit(measured.run_checked(main, sys.argv))
