#!/usr/bin/python3
"""make_golden.py: write the golden collbench -J files of tests/integration/operators.sh.

Usage: tests/golden/make_golden.py   (rewrites the files beside this script)

The files follow src/report/json.c's schema and layout. Their figures are
made up, each size planted to give one verdict (see the tables below), so the
expected verdicts are known: nightly-ok/ passes against nightly-baseline/, and
nightly-regressed/ regresses (all_reduce 524288 busbw, all_gather 2048 p99,
all_reduce 8192 wrong elements).

compare-a.json vs compare-b.json draw each size's per-iteration times from
known distributions (log-normal, fixed seeds), planted to give the verdict in
compare-expected.csv: the same distribution is "same", a 10% shift "slower",
a 20x difference "slower" even with 20 noisy iterations, a small shift under
heavy noise with few iterations "unclear". compare-same-1.json and
compare-same-2.json are two samples of one distribution per size ("same"
everywhere); compare-4ranks.json is compare-a.json's run on 4 ranks.
"""
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SIZES = [8, 32, 128, 512, 2048, 8192, 32768, 131072, 524288]
# the baseline's latency (p50, us) per size; the width of its samples (p90 - p10)
# is 10% of that, which makes the verdicts' spread (3 x 1.4826 x MAD) 12%
BASE_P50 = dict(zip(SIZES, [20, 20.5, 21, 23, 28, 45, 90, 260, 900]))
# where the sorted samples sit, in spreads from the p50: with 20 samples the
# nearest-rank p10 is index 1, p50 index 9, p90 index 17 and p99 index 19
OFFSETS = [-0.6, -0.5, -0.4, -0.3, -0.25, -0.2, -0.15, -0.1, -0.05, 0,
           0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.45, 0.5, 0.7, 1.0]
ORDER = [7, 13, 2, 19, 10, 0, 16, 5, 11, 3, 18, 8, 14, 1, 17, 6, 12, 4, 15, 9]

def samples(p50, width, p99=None):
    """20 per-iteration times with this nearest-rank p50, p90 - p10 and p99, shuffled."""
    values = [p50 + width * o for o in OFFSETS]
    if p99 is not None:
        values[-1] = p99
    return [round(values[i], 3) for i in ORDER]


def pct(values, q):
    """Nearest-rank q-quantile, as collbench computes it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


# busbw / algbw on 2 ranks (docs/measurement.md)
BUSBW_FACTOR = {"all_reduce": 1.0, "all_gather": 0.5}


def half(collective, size, iter_times, busbw, nwrong):
    """One placement, as json.c writes it, of 2 ranks; rank 0 is the slower."""
    rank1 = [round(t * 0.97, 3) for t in iter_times]
    algbw = sig(busbw / BUSBW_FACTOR[collective])
    return {
        "time_us": round(size / (algbw * 1e3), 3), "algbw_gbps": algbw, "busbw_gbps": busbw,
        "nwrong": nwrong,
        "per_iter": {
            "min_us": min(iter_times), "p50_us": pct(iter_times, 0.5), "p90_us": pct(iter_times, 0.9),
            "p99_us": pct(iter_times, 0.99), "p999_us": pct(iter_times, 0.999),
            "max_us": max(iter_times), "mean_us": round(sum(iter_times) / len(iter_times), 3),
            "slowest_rank": 0, "slowest_count": len(iter_times),
            "iter_max_us": iter_times, "per_rank_us": [iter_times, rank1],
        },
    }


def result(collective, size, iter_times, busbw, nwrong=0):
    return {"collective": collective, "size": size, "count": size // 4, "type": "float",
            "redop": "sum", "root": None, "algo": "ring",
            "out_of_place": half(collective, size, iter_times, busbw, nwrong),
            "in_place": half(collective, size, iter_times, busbw, nwrong)}


def sig(value):
    """Six significant digits: readable, and close enough for the planted verdicts."""
    return float(f"{value:.6g}")


def base_busbw(size):
    return sig(size / (BASE_P50[size] * 0.95) / 1e3)


VERBS_ROCE = {"device": "mlx5_0", "port": "1", "link_layer": "Ethernet",
              "rate": "100 Gb/s (4X EDR)", "active_mtu": "1024", "path_mtu": "1024",
              "gid_type": "RoCE v2", "qps": "1"}
VERBS_IB = {"device": "mlx5_1", "port": "1", "link_layer": "InfiniBand",
            "rate": "100 Gb/s (4X EDR)", "active_mtu": "4096", "path_mtu": "4096",
            "gid_type": "IB", "qps": "1"}
TCP = {"transport": "tcp", "interface": "eth0", "mtu": "9000", "rate": "25 Gb/s"}


def document(collective, transport, props, start, results, nranks=2):
    """A whole -J file: header, ranks on node1, node2, ..., results, summary."""
    sizes = [r["size"] for r in results]
    busbws = [r["out_of_place"]["busbw_gbps"] for r in results]
    wrong = sum(r["out_of_place"]["nwrong"] + r["in_place"]["nwrong"] for r in results)
    return {
        "collbench_version": "0.1.0", "start_time": start,
        "argv": ["collbench", collective, "-b", "8", "-e", str(max(sizes)), "-f", "4",
                 "-J", f"{collective}.json"],
        "config": {"collective": collective, "min_bytes": min(sizes), "max_bytes": max(sizes),
                   "step_bytes": 1048576, "step_factor": 4, "iters": 20, "warmup": 1,
                   "agg_iters": 1, "check_iters": 1, "cycles": 1, "average": 1,
                   "blocking": False, "unalign": False, "per_iter": True, "timeout_s": 60,
                   "slot_bytes": 524288, "nslots": 8, "algo": "auto"},
        "nranks": nranks, "transport": transport,
        "ranks": [{"rank": r, "host": f"node{r + 1}", "pid": 4242 + r, "props": props}
                  for r in range(nranks)],
        "results": results,
        "summary": {"total_wrong": wrong, "avg_busbw_gbps": sig(sum(busbws) / len(busbws)),
                    "peak_busbw_gbps": max(busbws), "peak_size": sizes[busbws.index(max(busbws))],
                    "largest_busbw_gbps": busbws[-1], "largest_size": sizes[-1],
                    "passed": wrong == 0},
        "end_time": start[:-3] + "42Z",
    }


# ---- json.c's layout: objects one key a line, number arrays inline ----

def layout(value, depth=0):
    pad = "\n" + "  " * (depth + 1)
    if isinstance(value, dict):
        items = [f'{pad}"{k}": {layout(v, depth + 1)}' for k, v in value.items()]
        return "{" + ",".join(items) + "\n" + "  " * depth + "}" if items else "{}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[" + ",".join(pad + layout(v, depth + 1) for v in value) + "\n" + "  " * depth + "]"
    if isinstance(value, list):
        return "[" + ",".join(layout(v, depth) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value + '"'
    return format(value, "g") if isinstance(value, float) else str(value)


def write(name, doc):
    path = os.path.join(HERE, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(layout(doc) + "\n")


# ---- the files ----

# compare: size -> (A's median us, B's median over A's, A's and B's log sigma,
# iterations, verdict). 4 MiB is issue 16's shm vs tcp: B's iterations so
# spread that the old rule (difference vs 3 x 1.4826 x MAD) called it "same"
COMPARE_CASES = {
    8: (20.0, 1.0, 0.05, 0.05, 400, "same"),
    1024: (25.0, 1.10, 0.05, 0.05, 400, "slower"),
    65536: (120.0, 0.70, 0.05, 0.05, 400, "faster"),
    1048576: (300.0, 1.03, 0.3, 0.3, 12, "unclear"),
    4194304: (400.0, 8238 / 400, 0.5, 0.7, 20, "slower"),
}
SAME_SIZES = {8: 20.0, 4096: 35.0, 262144: 300.0, 4194304: 2500.0}


def lognormal(rng, median, sigma, count):
    """count per-iteration times around median, with a few stalls (x3) as on a shared host."""
    times = [median * math.exp(rng.gauss(0, sigma)) for _ in range(count)]
    for i in range(0, count, 50):
        times[i] *= 3
    return [round(t, 3) for t in times]


def sampled_result(collective, size, times):
    busbw = sig(size / (sorted(times)[len(times) // 2]) / 1e3 * BUSBW_FACTOR[collective])
    return result(collective, size, times, busbw)


def compare_runs():
    a, b = [], []
    rng_a, rng_b = random.Random(1601), random.Random(1602)
    for size, (median, ratio, sigma_a, sigma_b, count, _) in COMPARE_CASES.items():
        a.append(sampled_result("all_reduce", size, lognormal(rng_a, median, sigma_a, count)))
        b.append(sampled_result("all_reduce", size,
                                lognormal(rng_b, median * ratio, sigma_b, count)))
    b.append(sampled_result("all_reduce", 16777216, lognormal(rng_b, 9000, 0.05, 400)))
    write("compare-a.json", document("all_reduce", "verbs", VERBS_ROCE, "2024-05-01T03:00:00Z", a))
    write("compare-b.json", document("all_reduce", "verbs", VERBS_IB, "2024-05-02T03:00:00Z", b))
    write("compare-4ranks.json", document("all_reduce", "verbs", VERBS_ROCE,
                                          "2024-05-03T03:00:00Z", a, nranks=4))
    rows = [f"{size},{case[-1]}" for size, case in COMPARE_CASES.items()] + ["16777216,n/a"]
    with open(os.path.join(HERE, "compare-expected.csv"), "w", encoding="utf-8") as f:
        f.write("size,verdict\n" + "\n".join(rows) + "\n")
    for name, seed in (("compare-same-1.json", 1603), ("compare-same-2.json", 1604)):
        rng = random.Random(seed)
        results = [sampled_result("all_reduce", size, lognormal(rng, median, 0.1, 1000))
                   for size, median in SAME_SIZES.items()]
        write(name, document("all_reduce", "tcp", TCP, "2024-05-04T03:00:00Z", results))


def night(folder, start, change):
    """all_reduce.json and all_gather.json of one night.

    change(collective, size) -> (p50 x, width x, busbw x, p99 or None, wrong elements)."""
    for collective in ("all_reduce", "all_gather"):
        results = []
        for s in SIZES:
            p50_x, width_x, bw_x, p99, nwrong = change(collective, s)
            times = samples(BASE_P50[s] * p50_x, BASE_P50[s] / 10 * width_x, p99)
            results.append(result(collective, s, times, sig(base_busbw(s) * bw_x), nwrong))
        write(f"{folder}/{collective}.json", document(collective, "tcp", TCP, start, results))


def unchanged(collective, size):
    return 1.0, 1.0, 1.0, None, 0


def ok_night(collective, size):
    """Within the noise everywhere; all_reduce 32768 is below 0.9 x busbw but its noise is wide."""
    if (collective, size) == ("all_reduce", 32768):
        return 1.0, 3.0, 0.85, None, 0
    wobble = 1 + 0.02 * ((size.bit_length() % 3) - 1)
    return wobble, 1.0, 1 / wobble, None, 0


def regressed_night(collective, size):
    if (collective, size) == ("all_reduce", 524288):
        return 1.4, 1.0, 0.7, None, 0
    if (collective, size) == ("all_gather", 2048):
        return 1.0, 1.0, 1.0, 50.0, 0
    if (collective, size) == ("all_reduce", 8192):
        return 1.0, 1.0, 1.0, None, 3
    return ok_night(collective, size)


def main():
    if len(sys.argv) > 1:
        print(__doc__.strip())
        return 0 if sys.argv[1] in ("-h", "--help") else 2
    compare_runs()
    night("nightly-baseline", "2024-04-01T02:00:00Z", unchanged)
    night("nightly-ok", "2024-05-10T02:00:00Z", ok_night)
    night("nightly-regressed", "2024-05-11T02:00:00Z", regressed_night)
    return 0


if __name__ == "__main__":
    sys.exit(main())
