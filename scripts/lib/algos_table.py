"""Tables and plots of scripts/bench-algos' runs.

usage: algos_table.py DIR NP...   (reads DIR/npN.{ring,tree,rd,rabenseifner,auto,mpi}[.rK].json;
                                   with repeats, per size the best busbw, time and p50)
Per size: each algorithm's busbw (throughput pass, out-of-place) and p50 (per-
iteration median of the max over ranks), the algorithm auto ran, auto's time
over our best algorithm's (throughput time; <= 1.10 is the target), and MPI's
p50 and busbw over auto's. Writes DIR/busbw-npN.svg.
"""
import glob
import json
import math
import sys

ALGOS = ["ring", "tree", "rd", "rabenseifner", "auto", "mpi"]
COLORS = {"ring": "#1f77b4", "tree": "#2ca02c", "rd": "#d62728", "rabenseifner": "#9467bd",
          "auto": "#000000", "mpi": "#ff7f0e"}


def load(directory, np, algo):
    """Best of the repeats (npN.ALGO.json, npN.ALGO.rK.json): on a shared
    machine other jobs only ever slow a run down."""
    out = {}
    for path in sorted(glob.glob(f"{directory}/np{np}.{algo}.json") + glob.glob(f"{directory}/np{np}.{algo}.r*.json")):
        with open(path) as f:
            doc = json.load(f)
        for r in doc["results"]:
            o = r["out_of_place"]
            new = {"bw": o["busbw_gbps"], "t": o["time_us"],
                   "p50": (o.get("per_iter") or {}).get("p50_us"), "algo": r.get("algo", "?")}
            old = out.get(r["size"])
            if old:
                new = {"bw": max(old["bw"], new["bw"]), "t": min(old["t"], new["t"]),
                       "p50": min(old["p50"] or 1e30, new["p50"] or 1e30), "algo": old["algo"]}
            out[r["size"]] = new
    return out


def fmt_size(s):
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if s >= div and s % div == 0:
            return f"{s // div}{unit}"
    return str(s)


def table(directory, np, runs):
    print(f"\n### all_reduce, {np} ranks: busbw GB/s / p50 us\n")
    print("| size | " + " | ".join(ALGOS) + " | auto ran | auto/best time | MPI/auto p50 | auto/MPI busbw |")
    print("|---:|" + "---:|" * len(ALGOS) + "---|---:|---:|---:|")
    for size in sorted(runs["auto"]):
        cells = []
        for a in ALGOS:
            r = runs[a].get(size)
            cells.append(f"{r['bw']:.3g} / {r['p50']:.3g}" if r and r["p50"] else "-")
        ours = [runs[a][size]["t"] for a in ALGOS[:4] if size in runs[a]]
        auto, mpi = runs["auto"][size], runs["mpi"].get(size)
        best = min(ours) if ours else float("nan")
        lat = mpi["p50"] / auto["p50"] if mpi and auto["p50"] else float("nan")
        bw = auto["bw"] / mpi["bw"] if mpi and mpi["bw"] else float("nan")
        print(f"| {fmt_size(size)} | " + " | ".join(cells) +
              f" | {auto['algo']} | {auto['t'] / best:.2f} | {lat:.2f} | {bw:.2f} |")


def svg(directory, np, runs):
    w, h, l, b = 640, 400, 60, 40
    sizes = sorted(runs["auto"])
    if len(sizes) < 2:
        return
    ymax = max((r["bw"] for a in ALGOS for r in runs[a].values()), default=1) * 1.1 or 1
    x0, x1 = math.log2(sizes[0]), math.log2(sizes[-1])
    px = lambda s: l + (math.log2(s) - x0) / (x1 - x0) * (w - l - 20)
    py = lambda v: h - b - v / ymax * (h - b - 30)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="{w / 2}" y="16" text-anchor="middle" font-size="13">all_reduce busbw (GB/s), {np} ranks</text>',
           f'<line x1="{l}" y1="{h - b}" x2="{w - 20}" y2="{h - b}" stroke="black"/>',
           f'<line x1="{l}" y1="{h - b}" x2="{l}" y2="30" stroke="black"/>']
    for s in sizes[::2]:
        out.append(f'<text x="{px(s):.1f}" y="{h - b + 15}" text-anchor="middle">{fmt_size(s)}</text>')
    for i in range(5):
        v = ymax * i / 4
        out.append(f'<text x="{l - 5}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2g}</text>')
    for k, a in enumerate(ALGOS):
        pts = " ".join(f"{px(s):.1f},{py(runs[a][s]['bw']):.1f}" for s in sizes if s in runs[a])
        dash = ' stroke-dasharray="4,3"' if a == "mpi" else ""
        out.append(f'<polyline fill="none" stroke="{COLORS[a]}" stroke-width="2"{dash} points="{pts}"/>')
        out.append(f'<text x="{l + 10}" y="{45 + 14 * k}" fill="{COLORS[a]}">{a}</text>')
    out.append("</svg>")
    with open(f"{directory}/busbw-np{np}.svg", "w") as f:
        f.write("\n".join(out) + "\n")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    for np in argv[2:]:
        runs = {a: load(argv[1], np, a) for a in ALGOS}
        if not runs["auto"]:
            print(f"no np{np}.auto.json in {argv[1]}", file=sys.stderr)
            return 1
        table(argv[1], np, runs)
        svg(argv[1], np, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
