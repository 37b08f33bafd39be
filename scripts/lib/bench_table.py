"""Side by side: collbench's run and MPI's (--mpi-reference) of the same sweep.

usage: bench_table.py DIR COLL...   (reads DIR/COLL.ours*.json and DIR/COLL.mpi*.json: the
                                     sweeps of one side, e.g. a latency and a bandwidth pass)
busbw is the throughput figure (out-of-place); p50 is the per-iteration median
of the maximum over ranks. Ratios > 1 mean collbench is better.
"""
import glob
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
from cb_files import UserError, read_json  # noqa: E402


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
        return
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


def checked_main(argv):
    """main, with a one-line error (exit 2) for a file that is not what it should be."""
    try:
        return main(argv)
    except UserError as e:
        print(f"{os.path.basename(argv[0])}: {e}", file=sys.stderr)
    except (KeyError, TypeError, IndexError, ValueError, ZeroDivisionError) as e:
        print(f"{os.path.basename(argv[0])}: a result file lacks a field or has one of the "
              f"wrong kind ({type(e).__name__}: {e}); not a collbench -J file?", file=sys.stderr)
    except OSError as e:
        print(f"{os.path.basename(argv[0])}: cannot write {e.filename}: {e.strerror}",
              file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(checked_main(sys.argv))
