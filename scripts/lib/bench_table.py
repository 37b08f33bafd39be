"""Side by side: collbench's run and MPI's (--mpi-reference) of the same sweep.

usage: bench_table.py DIR COLL...   (reads DIR/COLL.ours.json and DIR/COLL.mpi.json)
busbw is the throughput figure (out-of-place); p50 is the per-iteration median
of the maximum over ranks. Ratios > 1 mean collbench is better.
"""
import json
import sys


def rows(path):
    with open(path) as f:
        doc = json.load(f)
    out = {}
    for r in doc["results"]:
        oop = r["out_of_place"]
        p50 = (oop.get("per_iter") or {}).get("p50_us")
        out[r["size"]] = (oop["busbw_gbps"], p50, r.get("algo", "?"))
    return doc, out


def table(directory, coll):
    doc, ours = rows(f"{directory}/{coll}.ours.json")
    _, mpi = rows(f"{directory}/{coll}.mpi.json")
    print(f"\n### {coll}, {doc['nranks']} ranks, transport {doc['transport']}\n")
    print("| size (B) | algo | collbench busbw GB/s | MPI busbw GB/s | busbw ratio "
          "| collbench p50 us | MPI p50 us | p50 ratio (MPI/ours) |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for size in sorted(ours):
        if size not in mpi:
            continue
        (bw, p50, algo), (mbw, mp50, _) = ours[size], mpi[size]
        ratio = bw / mbw if mbw else float("nan")
        lat = mp50 / p50 if p50 and mp50 else float("nan")
        print(f"| {size} | {algo} | {bw:.3f} | {mbw:.3f} | {ratio:.2f} | "
              f"{p50 or 0:.2f} | {mp50 or 0:.2f} | {lat:.2f} |")


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    for coll in argv[2:]:
        table(argv[1], coll)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
