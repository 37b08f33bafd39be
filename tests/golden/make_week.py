#!/usr/bin/python3
"""make_week.py OUT: a simulated week of nightly results, for tests/integration/operators.sh.

Writes OUT/night1 ... OUT/night7, each all_reduce.json and all_gather.json
(the -J schema, via make_golden.py's helpers) with 500 per-iteration samples
per size drawn from log-normal noise (fixed seeds, so the week is the same on
every run). Planted:
  night 3         all_gather 64 KiB 30% slower (busbw 0.7x): one night only
  nights 5, 6, 7  all_reduce 1 MiB 33% slower (busbw 0.75x): persistent
  nights 6, 7     all_gather 8 B: the slowest 3% of iterations 4x (p99)
"""
import math
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_golden as mg  # noqa: E402

SIZES = {8: 20.0, 65536: 120.0, 1048576: 900.0}
COUNT = 500


def slowdown(night, collective, size):
    """(median factor, tail factor) planted in this night."""
    if night == 3 and (collective, size) == ("all_gather", 65536):
        return 1 / 0.7, 1.0
    if night >= 5 and (collective, size) == ("all_reduce", 1048576):
        return 1 / 0.75, 1.0
    if night >= 6 and (collective, size) == ("all_gather", 8):
        return 1.0, 4.0
    return 1.0, 1.0


def times(rng, median, tail):
    values = sorted(median * math.exp(rng.gauss(0, 0.05)) for _ in range(COUNT))
    slow = int(COUNT * 0.03)
    values[-slow:] = [v * tail for v in values[-slow:]]
    rng.shuffle(values)
    return [round(v, 3) for v in values]


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    for night in range(1, 8):
        folder = os.path.join(argv[1], f"night{night}")
        os.makedirs(folder, exist_ok=True)
        for collective in ("all_reduce", "all_gather"):
            rng = random.Random(night * 100 + len(collective))
            results = []
            for size, median in SIZES.items():
                factor, tail = slowdown(night, collective, size)
                iter_times = times(rng, median * factor, tail)
                busbw = mg.sig(size / (median * factor * 1.05) / 1e3 * mg.BUSBW_FACTOR[collective])
                results.append(mg.result(collective, size, iter_times, busbw))
            doc = mg.document(collective, "tcp", mg.TCP, f"2024-06-0{night}T02:00:00Z", results)
            doc["config"]["iters"] = COUNT
            with open(os.path.join(folder, f"{collective}.json"), "w", encoding="utf-8") as f:
                f.write(mg.layout(doc) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
