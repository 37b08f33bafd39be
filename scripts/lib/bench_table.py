"""Side by side: collbench's run and MPI's (--mpi-reference) of the same sweep.

usage: bench_table.py DIR COLL...   (reads DIR/COLL.ours*.json and DIR/COLL.mpi*.json: the
                                     sweeps of one side, e.g. a latency and a bandwidth pass)
busbw is the throughput figure (out-of-place); p50 is the per-iteration median
of the maximum over ranks. Ratios > 1 mean collbench is better. Also writes
DIR/measured.json, the tables with the run's metadata from DIR/run.json
(scripts/lib/measured.py: what `scripts/bench-shm --record` keeps under
results/measured/ for the docs).
"""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from cb_files import read_json  # noqa: E402
import measured  # noqa: E402

COLUMNS = [{"name": "size (B)", "format": "d"}, {"name": "algo", "align": "l"},
           {"name": "collbench busbw GB/s", "format": ".3f"}, {"name": "MPI busbw GB/s", "format": ".3f"},
           {"name": "busbw ratio", "format": ".2f"}, {"name": "collbench p50 us", "format": ".2f"},
           {"name": "MPI p50 us", "format": ".2f"}, {"name": "p50 ratio (MPI/ours)", "format": ".2f"}]


def rows(directory, coll, side):
    """{size: (busbw, p50, algo)} over every sweep of one side."""
    doc, out = None, {}
    for path in sorted(glob.glob(f"{directory}/{coll}.{side}*.json")):
        doc = read_json(path)
        for r in doc["results"]:
            oop = r["out_of_place"]
            p50 = (oop.get("per_iter") or {}).get("p50_us")
            out[r["size"]] = (oop["busbw_gbps"], p50, r.get("algo", "?"))
    return doc, out


def table(directory, coll):
    doc, ours = rows(directory, coll, "ours")
    _, mpi = rows(directory, coll, "mpi")
    if not doc:
        print(f"no {coll}.ours*.json in {directory}", file=sys.stderr)
        return None
    table_rows = []
    for size in sorted(ours):
        if size not in mpi:
            continue
        (bw, p50, algo), (mbw, mp50, _) = ours[size], mpi[size]
        ratio = bw / mbw if mbw else None
        lat = mp50 / p50 if p50 and mp50 else None
        table_rows.append([size, algo, bw, mbw, ratio, p50, mp50, lat])
    print(f"\n### {coll}, {doc['nranks']} ranks, transport {doc['transport']}\n")
    t = {"columns": COLUMNS, "rows": table_rows}
    print("\n".join(measured.table_lines(t)))
    return t


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    tables = {coll: table(argv[1], coll) for coll in argv[2:]}
    tables = {c: t for c, t in tables.items() if t}
    if tables:
        measured.write(os.path.join(argv[1], "measured.json"),
                       measured.finish(tables, os.path.join(argv[1], "run.json"), "scripts/bench-shm",
                                       "scripts/bench-shm"))
    return 0


if __name__ == "__main__":
    sys.exit(measured.run_checked(main, sys.argv))
