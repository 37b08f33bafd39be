#!/usr/bin/env python3
"""Check a run's nccl-tests-format table (stdout) and -J file field by field
against nccl-tests' layout as its src/util.cu and per-collective files
define it. Usage: nccl_format.py OUT JSON|- COLL NRANKS ARGS_JSON
ARGS_JSON: {"types": [...], "ops": [...], "sizes": [...], "root": R,
"per_iter": 0/1, "check": N, "argv": [...], "program": "all_reduce_perf"}.
Prints nothing and exits 0 when everything matches, else says what differs."""
import json
import re
import sys

TYPE_SIZE = {"int8": 1, "uint8": 1, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "half": 2,
             "float": 4, "double": 8, "bfloat16": 2, "f8e4m3": 1, "f8e5m2": 1}
PER_RANK = {"all_gather", "reduce_scatter", "alltoall"}      # count = each rank's piece
NO_OP = {"all_gather", "alltoall", "broadcast"}              # redop "none"
ROOTED = {"broadcast", "reduce"}
FACTOR = {"all_reduce": lambda n: 2 * (n - 1) / n, "all_gather": lambda n: (n - 1) / n,
          "reduce_scatter": lambda n: (n - 1) / n, "alltoall": lambda n: (n - 1) / n,
          "broadcast": lambda n: 1, "reduce": lambda n: 1, "sendrecv": lambda n: 1}
errors = []


def err(msg):
    errors.append(msg)


def float_str(v, width):
    """nccl-tests' getFloatStr."""
    power, p = 0, 1
    while v >= p:
        power += 1
        p *= 10
    if power < width - 2:
        return "%*.2f" % (width, v)
    if power < width - 1:
        return "%*.1f" % (width, v)
    if power < width + 1:
        return "%*.0f" % (width, v)
    if width >= 7:
        return "%*.1e" % (width, v)
    return "%*.0e" % (width, v)


def expect_counts(coll, size, ts, n):
    """(size column, count column) as nccl-tests' getCollByteCount gives them."""
    count = size // ts
    if coll in PER_RANK:
        base = (count // n) & -(16 // ts) if ts < 16 else count // n
        return base * n * ts, base
    return count * ts, count


def header_lines(per_iter):
    if per_iter:
        return [
            "# %10s  %12s  %8s  %6s  %6s              out-of-place (+ per-iteration)                       "
            "         in-place (+ per-iteration)" % ("", "", "", "", ""),
            "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %7s  %7s  %7s  %7s  %6s  %6s  %6s  "
            "%7s  %7s  %7s  %7s %s" % ("size", "count", "type", "redop", "root", "time", "algbw", "busbw",
                                       "#wrong", "i_min", "i_max", "i_p99", "i_cv%", "time", "algbw",
                                       "busbw", "#wrong", "i_min", "i_max", "i_p99", "i_cv%", ""),
            "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %7s  %7s  %7s  %7s  %6s  %6s  %6s  "
            "%7s  %7s  %7s  %7s %s" % ("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "",
                                       "(us)", "(us)", "(us)", "(%)", "(us)", "(GB/s)", "(GB/s)", "",
                                       "(us)", "(us)", "(us)", "(%)", "")]
    return [
        "# %10s  %12s  %8s  %6s  %6s           out-of-place                       in-place          "
        % ("", "", "", "", ""),
        "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %s"
        % ("size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time", "algbw",
           "busbw", "#wrong", ""),
        "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s %s"
        % ("(B)", "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)", "", "")]


def rebuild_body(f):
    """One placement's fields laid out again as nccl-tests prints them."""
    t, a, b, w = f
    s = "  %7s  %6s  %6s" % (float_str(float(t), 7), float_str(float(a), 6), float_str(float(b), 6))
    return s + ("    N/A" if w == "N/A" else "  %6g" % float(w))


def check_row(line, exp, coll, n, a):
    f = line.split()
    want = 21 if a["per_iter"] else 13
    if len(f) != want:
        return err("row has %d fields, nccl-tests has %d: %r" % (len(f), want, line))
    size, count, typ, redop, root = int(f[0]), int(f[1]), f[2], f[3], int(f[4])
    if (size, count, typ, redop, root) != exp:
        err("row starts %r, expected %r" % ((size, count, typ, redop, root), exp))
    halves = [f[5:9], f[13:17]] if a["per_iter"] else [f[5:9], f[9:13]]
    rebuilt = "%12d  %12d  %8s  %6s  %6d" % exp
    for i, h in enumerate(halves):
        rebuilt += rebuild_body(h)
        if a["per_iter"]:
            it = f[9:13] if i == 0 else f[17:21]
            rebuilt += "".join("  %7s" % float_str(float(x), 7) for x in it)
            if not float(it[0]) <= float(it[2]) <= float(it[1]):
                err("i_min <= i_p99 <= i_max fails: %r" % it)
        if a["check"] == 0 and h[3] != "N/A":
            err("-c 0 but #wrong is %r, not N/A" % h[3])
        if a["check"] and h[3] != "0":
            err("#wrong %r in a correct run" % h[3])
        algbw, busbw, t = float(h[1]), float(h[2]), float(h[0])
        # the time column is rounded (to 0.01 us below 1000): at 0.15 us that alone is 3 %
        half = 0.5 * 10 ** -(len(h[0].split(".")[1]) if "." in h[0] else 0)
        tol = max(0.011, 0.02 * algbw, algbw * half / (t - half) + 0.006 if t > half else 0)
        if t > 0 and abs(algbw - exp[0] / 1e3 / t) > tol:
            err("algbw %s is not size/time (%d B, %s us)" % (h[1], exp[0], h[0]))
        if abs(busbw - algbw * FACTOR[coll](n)) > max(0.011, 0.02 * busbw):
            err("busbw %s is not algbw x nccl-tests' factor for %s" % (h[2], coll))
    if rebuilt != line:
        err("row layout differs from nccl-tests':\n  got  %r\n  want %r" % (line, rebuilt))
    return [float(h[2]) for h in halves]


def expected_rows(coll, n, a):
    rows = []
    roots = list(range(n)) if a["root"] == "all" else [a["root"]]   # -r all: each rank in turn
    for typ in a["types"]:
        for op in (["none"] if coll in NO_OP else a["ops"]):
            for root in (roots if coll in ROOTED else [-1]):
                for s in a["sizes"]:
                    size, count = expect_counts(coll, s, TYPE_SIZE[typ], n)
                    rows.append((size, count, typ, op, root))
    return rows


def check_table(path, coll, n, a):
    lines = open(path).read().split("\n")[:-1]   # the file ends with a newline
    if lines and lines[0].startswith("# Writing JSON output to "):
        lines = lines[1:]
    want_start = ["# Collective test starting: %s" % a["program"]]
    if not re.match(r"^# collbench version \S+ \(nccl-tests' output format", lines[0]):
        err("first line: %r" % lines[0])
    if lines[1:2] != want_start:
        err("second line %r, expected %r" % (lines[1:2], want_start))
    if not re.match(r"^# nThread 1 nGpus 1 minBytes %d maxBytes %d step: \d+\((factor|bytes)\) warmup iters: \d+ "
                    r"iters: \d+ agg iters: \d+ validation: %d graph: \d+ unalign: \d+$"
                    % (a["sizes"][0], a["sizes"][-1], a["check"]), lines[2]):
        err("nThread line: %r" % lines[2])
    i = lines.index("# Using devices")
    ranks = lines[i + 1:i + 1 + n]
    for r, line in enumerate(ranks):
        if not re.match(r"^#  Rank %2d Group  0 Pid +\d+ on +\S+ device +\d+ \[0000:00:00\] host memory via \w+$"
                        % r, line):
            err("rank line %d: %r" % (r, line))
    j = i + 1 + n
    if lines[j] != "#" or lines[j + 1:j + 4] != header_lines(a["per_iter"]):
        err("column header differs from nccl-tests':\n%s" % "\n".join(lines[j:j + 4]))
    rows = [l for l in lines[j + 4:] if l and not l.startswith("#")]
    exp = expected_rows(coll, n, a)
    if len(rows) != len(exp):
        err("%d rows, expected %d" % (len(rows), len(exp)))
    busbw = []
    for line, e in zip(rows, exp):
        busbw += check_row(line, e, coll, n, a) or []
    tail = lines[j + 4 + len(rows):]
    m = re.match(r"^# Avg bus bandwidth    : (\S+) $", tail[1] if len(tail) > 1 else "")
    want = ["# Out of bounds values : 0 OK", None, "#", "# Collective test concluded: %s" % a["program"], "#", ""]
    if len(tail) != len(want) or tail[0] != want[0] or tail[2:] != want[2:] or not m:
        err("closing lines differ from nccl-tests':\n%s" % "\n".join(tail))
    elif busbw and abs(float(m.group(1)) - sum(busbw) / len(busbw)) > 0.01 + 0.01 * float(m.group(1)):
        err("Avg bus bandwidth %s is not the mean of the printed busbw" % m.group(1))
    return exp, rows


def check_json(path, text_rows, exp, coll, n, a):
    raw = open(path).read()
    doc = json.loads(raw)
    top = ["version", "start_time", "args", "env", "nccl_version", "config", "results", "out_of_bounds",
           "average_bus_bandwidth", "errors", "end_time"]
    if list(doc) != top:
        return err("JSON top-level keys %r, nccl-tests writes %r" % (list(doc), top))
    if doc["version"] != 2 or doc["args"] != a["argv"] or not isinstance(doc["nccl_version"], int):
        err("version/args/nccl_version: %r %r %r" % (doc["version"], doc["args"], doc["nccl_version"]))
    for k in ("start_time", "end_time"):
        if not re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", doc[k]):
            err("%s %r is not nccl-tests' time format" % (k, doc[k]))
    cfg = ["nthreads", "ngpus", "minimum_bytes", "maximum_bytes", "step_factor", "warmup_iters", "iterations",
           "aggregated_iterations", "validation", "graph", "blocking_collectives", "per_iter_timing",
           "parallel_init", "devices"]
    c = doc["config"]
    if list(c) != cfg:
        err("config keys %r, nccl-tests writes %r" % (list(c), cfg))
    if c.get("per_iter_timing") != ("true" if a["per_iter"] else "false") or c.get("validation") != a["check"]:
        err("config per_iter_timing/validation: %r" % c)
    dev = ["rank", "group", "pid", "hostname", "device", "device_hex", "device_info"]
    if len(c.get("devices", [])) != n or any(list(d) != dev for d in c.get("devices", [])):
        err("devices: %r" % c.get("devices"))
    res = doc["results"]
    if len(res) != len(exp):
        return err("%d JSON results, %d rows" % (len(res), len(exp)))
    keys = ["size", "count", "type", "redop", "root", "out_of_place"]
    keys += ["out_of_place_per_iter"] if a["per_iter"] else []
    keys += ["in_place"] + (["in_place_per_iter"] if a["per_iter"] else []) + ["actual_iterations",
                                                                            "experiment_name"]
    it_keys = ["min_us", "max_us", "avg_us", "p50_us", "p95_us", "p99_us", "stdev_us", "cv_pct", "times_us"]
    it_keys += ["per_process_max_times_us"] if n > 1 else []
    for r, e, line in zip(res, exp, text_rows):
        if list(r) != keys:
            err("result keys %r, nccl-tests writes %r" % (list(r), keys))
            continue
        if (r["size"], r["count"], r["type"], r["redop"], r["root"]) != (e[0], e[1], e[2], e[3], "%6d" % e[4]):
            err("result %r does not match row %r" % ([r[k] for k in keys[:5]], e))
        f = line.split()
        for name, h, col in (("out_of_place", r["out_of_place"], 5), ("in_place", r["in_place"], 13 if
                                                                         a["per_iter"] else 9)):
            if list(h) != ["time", "alg_bw", "bus_bw", "nwrong"]:
                err("%s keys %r" % (name, list(h)))
                continue
            if abs(float(f[col]) - h["time"]) > 0.0051 + 0.0051 * h["time"]:   # the table rounds
                err("%s time %r is not the table's %s" % (name, h["time"], f[col]))
            if (h["nwrong"] is None) != (a["check"] == 0):
                err("%s nwrong %r with -c %d" % (name, h["nwrong"], a["check"]))
            if a["per_iter"]:
                p = r[name + "_per_iter"]
                if list(p) != it_keys or len(p["times_us"]) != a["iters"]:
                    err("%s_per_iter: keys %r, %d times" % (name, list(p), len(p["times_us"])))
        if r["actual_iterations"] != a["iters"] or r["experiment_name"] != "":
            err("actual_iterations/experiment_name: %r %r" % (r["actual_iterations"], r["experiment_name"]))
    if doc["out_of_bounds"] != {"count": 0, "okay": "true"}:
        err("out_of_bounds %r" % doc["out_of_bounds"])
    if list(doc["average_bus_bandwidth"]) != ["bandwidth", "okay"]:
        err("average_bus_bandwidth %r" % doc["average_bus_bandwidth"])
    # nccl-tests prints every double with "%lf" and booleans as strings
    for m in re.finditer(r'"(time|alg_bw|bus_bw|bandwidth)":([^,}]*)', raw):
        if not re.match(r"^-?\d+\.\d{6}$", m.group(2)):
            err("%s written as %s, not nccl-tests' %%lf" % (m.group(1), m.group(2)))
            break


def main():
    out, jpath, coll, n, a = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), json.loads(sys.argv[5])
    exp, rows = check_table(out, coll, n, a)
    if jpath != "-" and not errors:
        check_json(jpath, rows, exp, coll, n, a)
    for e in errors[:8]:
        print(e)
    sys.exit(1 if errors else 0)


main()
