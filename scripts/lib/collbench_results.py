"""collbench results for the operator scripts (scripts/compare, scripts/nightly).

Loads the file that `collbench -J FILE` writes (src/report/json.c), checks the
fields these scripts read (types, finite numbers, counts that are not
negative), and compares two runs by VERDICT_RULE.
"""
import io
import math
import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple

import cb_stats
from cb_files import UserError, finite_number, read_json, shown, write_file

__all__ = ["UserError"]

DEFAULT_TOLERANCE = 0.05
P99_MIN_SAMPLES = cb_stats.min_samples(0.99)

VERDICT_RULE = f"""\
Verdicts come from the uncertainty of each run's median per-iteration time
(collbench -I 1, the default: each iteration's time is the maximum over ranks):
  interval  each median's distribution-free confidence interval from order
            statistics (the number of samples below the true median is
            Binomial(n, 1/2)), at {cb_stats.SIDE_CONFIDENCE:.1%} each, so that the ratio B/A
            lies in [low B / high A, high B / low A] with at least {cb_stats.CONFIDENCE:.0%}
            confidence; {cb_stats.min_samples(0.5)} samples are the fewest that give an interval
  same      the whole ratio interval within the tolerance (default +-{DEFAULT_TOLERANCE:.0%},
            --tolerance): no difference larger than that
  slower    the whole interval above 1 (B takes longer); faster: below 1
  unclear   the interval holds 1 and reaches beyond the tolerance: too few
            iterations, or too noisy, to tell (run more -n)
  n/a       a run lacks the size or its per-iteration samples (-I 0)
busbw (the throughput pass, one clock around all iterations) has no samples
of its own: its ratio is shown, not judged. p99's ratio gets an interval
only when both runs have at least {P99_MIN_SAMPLES} samples (the fewest for an
order-statistic interval of the 99th percentile at {cb_stats.SIDE_CONFIDENCE:.1%})."""


class RowKey(NamedTuple):
    """What identifies one row of collbench's table."""
    collective: str
    type: str
    redop: str
    size: int

    def group(self):
        """The collective, type and op: one plot, one line per run."""
        return (self.collective, self.type, self.redop)

    def __str__(self):
        return f"{self.collective} {self.type} {self.redop} size {self.size}"


@dataclass(frozen=True)
class Figures:
    """One size of one run (out-of-place); None where the run has no figure."""
    busbw: float | None      # GB/s, from the throughput pass
    p50: float | None        # us, per-iteration times
    p99: float | None
    nwrong: int | None       # wrong elements, both placements; None when not checked
    samples: tuple = ()      # per-iteration times (us), sorted


NO_FIGURES = Figures(None, None, None, None)

# config keys that change what a run measures; two runs that differ in one are
# not comparable without --anyway (iters only changes the uncertainty, which
# the verdicts take into account; sizes and timeouts change nothing measured)
MEASUREMENT_OPTIONS = ("warmup", "agg_iters", "average", "blocking", "unalign",
                       "slot_bytes", "nslots", "algo")


@dataclass
class Run:
    """One collbench -J file (or several merged, for a nightly sweep)."""
    path: str
    label: str               # transport, link layer, rate, MTU: from the header
    start_time: str
    host: str                # rank 0's host
    link: str                # rank 0's device:port, interface, or the transport
    transport: str
    nranks: int
    version: str = ""
    hosts: tuple = ()        # every rank's host name (address dropped), in rank order
    options: dict = field(default_factory=dict)   # MEASUREMENT_OPTIONS -> value
    rows: dict = field(default_factory=dict)    # RowKey -> Figures
    notes: list = field(default_factory=list)   # things worth a warning


# ---- checking the document ----

JSON_KIND_NAMES = {type(None): "null", bool: "boolean", int: "integer", float: "number",
                   str: "string", list: "list", dict: "object"}


def _kind_name(value):
    return JSON_KIND_NAMES.get(type(value), type(value).__name__)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


KINDS = {
    "object": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": _is_number,
    "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "measure": lambda v: finite_number(v) and v >= 0,
}
KIND_WORDS = {"count": "a whole number >= 0", "measure": "a finite number >= 0"}


def _field(obj, key, kind, where, nullable=False):
    """obj[key], checked to be of `kind` (a KINDS name); UserError names the path."""
    if key not in obj:
        raise UserError(f"{where}: missing '{key}'")
    value = obj[key]
    if value is None and nullable:
        return None
    if not KINDS[kind](value):
        expected = KIND_WORDS.get(kind, kind) + (" or null" if nullable else "")
        found = _kind_name(value) if not _is_number(value) else repr(value)[:24]
        raise UserError(f"{where}.{key}: expected {expected}, found {found}")
    return value


def _read_document(path):
    doc = read_json(path)
    if not isinstance(doc, dict) or "results" not in doc or "collbench_version" not in doc:
        raise UserError(f"{path} is not a collbench -J file: no 'collbench_version' and 'results'")
    return doc


# ---- loading ----

def _samples(per_iter, where):
    samples = _field(per_iter, "iter_max_us", "list", where, nullable=True) or []
    for i, v in enumerate(samples):
        if not KINDS["measure"](v):
            found = repr(v)[:24] if _is_number(v) else _kind_name(v)
            raise UserError(f"{where}.iter_max_us[{i}]: expected a finite number >= 0, "
                            f"found {found}")
    return tuple(sorted(samples))


def _wrong_elements(result, where):
    """Wrong elements of both placements; None when neither was checked."""
    counts = []
    for placement in ("out_of_place", "in_place"):
        half = _field(result, placement, "object", where, nullable=True) or {}
        if "nwrong" in half:
            value = _field(half, "nwrong", "count", f"{where}.{placement}", nullable=True)
            if value is not None:
                counts.append(value)
    return sum(counts) if counts else None


def _figures(result, where):
    nwrong = _wrong_elements(result, where)
    half = _field(result, "out_of_place", "object", where, nullable=True)
    if half is None:
        return Figures(None, None, None, nwrong)
    where += ".out_of_place"
    busbw = _field(half, "busbw_gbps", "measure", where, nullable=True)
    per_iter = _field(half, "per_iter", "object", where, nullable=True)
    if per_iter is None:
        return Figures(busbw, None, None, nwrong)
    where += ".per_iter"
    p50 = _field(per_iter, "p50_us", "measure", where, nullable=True)
    p99 = _field(per_iter, "p99_us", "measure", where, nullable=True)
    return Figures(busbw, p50, p99, nwrong, _samples(per_iter, where))


NAME_WORD = re.compile(r"^[A-Za-z0-9_.+-]{1,64}$")


def _name(result, key, where):
    """A collective, type or op name: a plain word (it ends up in tables and file names)."""
    value = _field(result, key, "string", where)
    if not NAME_WORD.match(value):
        raise UserError(f"{where}.{key}: '{shown(value)}' is not a name collbench writes")
    return value


def _row_key(result, where):
    return RowKey(_name(result, "collective", where), _name(result, "type", where),
                  _name(result, "redop", where), _field(result, "size", "count", where))


def _load_rows(doc, path, notes):
    rows = {}
    results = _field(doc, "results", "list", path)
    if not results:
        raise UserError(f"{path} has no results: the run measured no size")
    for i, result in enumerate(results):
        where = f"{path}: results[{i}]"
        if not isinstance(result, dict):
            raise UserError(f"{where}: expected object, found {_kind_name(result)}")
        key = _row_key(result, where)
        if key in rows:   # a sweep repeated with -N: keep the first cycle
            notes.append(f"{path}: {key} appears more than once (-N cycles, or several --algo?); using the first")
            continue
        rows[key] = _figures(result, where)
    return rows


def _rank_props(doc, path):
    """Each rank's (host, props), checked."""
    ranks = []
    for i, rank in enumerate(_field(doc, "ranks", "list", path)):
        where = f"{path}: ranks[{i}]"
        if not isinstance(rank, dict):
            raise UserError(f"{where}: expected object, found {_kind_name(rank)}")
        props = _field(rank, "props", "object", where)
        for key, value in props.items():
            if not isinstance(value, str):
                raise UserError(f"{where}.props.{shown(key)}: expected string, "
                                f"found {_kind_name(value)}")
        ranks.append((_field(rank, "host", "string", where), props))
    return ranks


def _options(doc, path):
    config = _field(doc, "config", "object", path, nullable=True) if "config" in doc else None
    config = config or {}
    return {k: config[k] for k in MEASUREMENT_OPTIONS if k in config}


def _distinct(ranks, key):
    """The values of one property over the ranks, in rank order, '/'-joined."""
    values = []
    for _, props in ranks:
        if props.get(key) and props[key] not in values:
            values.append(props[key])
    return "/".join(values)


def describe_link(ranks, transport):
    """Rank 0's link: device:port (verbs), interface (tcp), else the transport."""
    props = ranks[0][1] if ranks else {}
    if props.get("device"):
        return f"{props['device']}:{props.get('port', '1')}"
    return props.get("interface") or transport


def run_label(ranks, transport):
    """'verbs, Ethernet RoCE v2, 100 Gb/s (4X EDR), MTU 1024': what the run ran over."""
    gid_type = _distinct(ranks, "gid_type")
    layer = _distinct(ranks, "link_layer")
    if gid_type.startswith("RoCE"):
        layer = f"{layer} {gid_type}".strip()
    mtu = _distinct(ranks, "path_mtu") or _distinct(ranks, "mtu")
    parts = [transport, layer, _distinct(ranks, "interface"), _distinct(ranks, "rate"),
             f"MTU {mtu}" if mtu else ""]
    return ", ".join(p for p in parts if p)


def host_name(host):
    """'node01(10.1.0.3)' -> 'node01': the machine, whichever of its addresses was used."""
    return host.split("(", 1)[0]


def load_run(path):
    """Read and check one collbench -J file; UserError says what is wrong with it."""
    doc = _read_document(path)
    transport = _field(doc, "transport", "string", path, nullable=True) or "unknown"
    ranks = _rank_props(doc, path)
    nranks = _field(doc, "nranks", "count", path)
    if nranks < 1:
        raise UserError(f"{path}: nranks: expected a whole number >= 1, found 0")
    run = Run(path=path, label=run_label(ranks, transport),
              start_time=_field(doc, "start_time", "string", path, nullable=True) or "",
              host=ranks[0][0] if ranks else "unknown", link=describe_link(ranks, transport),
              transport=transport, nranks=nranks,
              version=_field(doc, "collbench_version", "string", path),
              hosts=tuple(host_name(h) for h, _ in ranks), options=_options(doc, path))
    run.rows = _load_rows(doc, path, run.notes)
    return run


def merge_runs(runs):
    """Several files of one sweep (one per collective) as one run; the first gives the header."""
    merged = Run(**{**runs[0].__dict__, "rows": {}, "notes": []})
    for run in runs:
        merged.notes += run.notes
        for what in ("nranks", "hosts", "options"):
            if getattr(run, what) != getattr(merged, what):
                merged.notes.append(f"{run.path}: {what} differ from {runs[0].path}'s")
        for key, figures in run.rows.items():
            if key in merged.rows:
                merged.notes.append(f"{run.path}: {key} was already read from another file; "
                                    "using the first")
            else:
                merged.rows[key] = figures
    return merged


# beside the results of a night: scripts/nightly's record and its pairs step's -J file
NOT_RESULTS = ("night.json", "pairs.json")


def load_path(path):
    """A run given as one -J file or a folder of them (*.json but night.json, one per collective)."""
    if not os.path.isdir(path):
        return merge_runs([load_run(path)])
    try:
        files = sorted(f for f in os.listdir(path) if f.endswith(".json") and f not in NOT_RESULTS)
    except OSError as e:
        raise UserError(f"cannot list {path}: {e.strerror}") from None
    if not files:
        raise UserError(f"{path} holds no collbench -J file (*.json)")
    merged = merge_runs([load_run(os.path.join(path, f)) for f in files])
    merged.path = path
    return merged


def run_differences(a, b, names=("A", "B")):
    """What makes two runs not comparable: rank counts, hosts, measurement options."""
    found = []
    if a.nranks != b.nranks:
        found.append(f"ranks: {names[0]} has {a.nranks}, {names[1]} has {b.nranks}")
    if a.hosts and b.hosts and sorted(set(a.hosts)) != sorted(set(b.hosts)):
        found.append(f"hosts: {names[0]} ran on {','.join(sorted(set(a.hosts)))}, "
                     f"{names[1]} on {','.join(sorted(set(b.hosts)))}")
    for key in MEASUREMENT_OPTIONS:
        if key in a.options and key in b.options and a.options[key] != b.options[key]:
            found.append(f"option {key}: {names[0]} {a.options[key]}, {names[1]} {b.options[key]}")
    return found


# ---- comparing two runs ----

@dataclass
class Comparison:
    """One row measured by a reference run and a new run."""
    key: RowKey
    ref: Figures | None
    new: Figures | None
    p50: tuple         # (point, low, high) of new/ref, Nones when undefined
    p99: tuple
    verdict: str       # same, faster, slower, unclear, n/a

    def ratio(self, metric):
        """new / ref of one metric ('busbw', 'p50', 'p99'); None when undefined."""
        if self.ref is None or self.new is None:
            return None
        ref, new = getattr(self.ref, metric), getattr(self.new, metric)
        if ref is None or new is None or ref == 0:
            return None
        return new / ref


NO_RATIO = (None, None, None)


def compare_rows(key, ref, new, tolerance=DEFAULT_TOLERANCE):
    if ref is None or new is None or not ref.samples or not new.samples:
        return Comparison(key, ref, new, NO_RATIO, NO_RATIO, "n/a")
    p50 = cb_stats.ratio_interval(ref.samples, new.samples, 0.5)
    p99 = cb_stats.ratio_interval(ref.samples, new.samples, 0.99)
    return Comparison(key, ref, new, p50, p99, cb_stats.time_verdict(p50[1], p50[2], tolerance))


def compare_runs(ref, new, tolerance=DEFAULT_TOLERANCE):
    """Every row of either run, in table order; UserError when they share none."""
    if not ref.rows.keys() & new.rows.keys():
        raise UserError(f"{ref.path} and {new.path} have no collective, type, op and size "
                        "in common: nothing to compare")
    keys = sorted(ref.rows.keys() | new.rows.keys())
    return [compare_rows(k, ref.rows.get(k), new.rows.get(k), tolerance) for k in keys]


# ---- one line per collective ----

def _change_words(low, high, verdict):
    """'20-23% slower', '19.5-21x slower', '3.1-3.4x faster' from a time ratio's bounds."""
    if verdict == "slower":
        if low >= 2:
            return f"{low:.3g}-{high:.3g}x slower"
        return f"{(low - 1) * 100:.0f}-{(high - 1) * 100:.0f}% slower"
    if high <= 0.5:
        return f"{1 / high:.3g}-{1 / low:.3g}x faster"
    return f"{(1 - high) * 100:.0f}-{(1 - low) * 100:.0f}% faster"


def _size_range(sizes, all_sizes):
    first, last = human_size(sizes[0]), human_size(sizes[-1])
    if len(sizes) == 1:
        return f"at {first}"
    if sizes[-1] == all_sizes[-1] and sizes[0] != all_sizes[0]:
        return f"from {first} up"
    if sizes[0] == all_sizes[0] and sizes[-1] != all_sizes[-1]:
        return f"up to {last}"
    return f"at {first}-{last}" if sizes != all_sizes else "at every size"


def _segments(rows):
    """Runs of consecutive sizes with the same verdict: [(verdict, [comparisons])]."""
    segments = []
    for c in rows:
        if segments and segments[-1][0] == c.verdict:
            segments[-1][1].append(c)
        else:
            segments.append((c.verdict, [c]))
    return segments


def summary_line(group, rows, new_name, tolerance=DEFAULT_TOLERANCE):
    """'all_reduce float sum: B is 20-23% slower from 1 MiB up; same (+-5%) up to 512 KiB'."""
    all_sizes = [c.key.size for c in rows]
    parts = []
    for verdict, seg in _segments(rows):
        where = _size_range([c.key.size for c in seg], all_sizes)
        if verdict in ("slower", "faster"):
            low = min(c.p50[1] for c in seg)
            high = max(c.p50[2] for c in seg)
            parts.append(f"{new_name} is {_change_words(low, high, verdict)} {where}")
        elif verdict == "same":
            parts.append(f"same (within +-{tolerance:.0%}) {where}")
        elif verdict == "unclear":
            parts.append(f"unclear {where} (too few or too noisy iterations: more -n)")
        else:
            parts.append(f"n/a {where} (a run lacks the size or its samples)")
    return f"{' '.join(group)}: " + "; ".join(parts)


def summary_lines(comparisons, new_name, tolerance=DEFAULT_TOLERANCE):
    groups = {}
    for c in comparisons:
        groups.setdefault(c.key.group(), []).append(c)
    return [summary_line(g, rows, new_name, tolerance) for g, rows in sorted(groups.items())]


# ---- printing ----

def human_size(size):
    """8 B, 32 KiB, 1 MiB: binary units, as collbench's -b and -e read them."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    step = 0
    while size >= 1024 and step < len(units) - 1:
        size /= 1024
        step += 1
    return f"{size:g} {units[step]}"


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


def _interval(ratio):
    point, low, high = ratio
    if point is None:
        return "-"
    if low is None:
        return f"{point:.3g} [?]"
    return f"{point:.3g} [{low:.3g}-{high:.3g}]"


def _table_header(a, b):
    ratio = f"{b}/{a}"
    return ("collective", "type", "redop", "size", f"p50 {a}", f"p50 {b}", f"{ratio} [95%]",
            f"busbw {a}", f"busbw {b}", ratio, f"p99 {a}", f"p99 {b}", f"{ratio} [95%]",
            "n", "verdict")


def _table_cells(c):
    ref, new = c.ref or NO_FIGURES, c.new or NO_FIGURES
    return (c.key.collective, c.key.type, c.key.redop, str(c.key.size),
            _num(ref.p50, ".1f"), _num(new.p50, ".1f"), _interval(c.p50),
            _num(ref.busbw, ".2f"), _num(new.busbw, ".2f"), _num(c.ratio("busbw"), ".2f"),
            _num(ref.p99, ".1f"), _num(new.p99, ".1f"), _interval(c.p99),
            f"{len(ref.samples)}/{len(new.samples)}", c.verdict)


def table_rows(comparisons, ref_name, new_name):
    """Header and cells of the side-by-side table (busbw GB/s, latencies us, ratios new/ref)."""
    return [_table_header(ref_name, new_name)] + [_table_cells(c) for c in comparisons]


def format_table(comparisons, ref_name, new_name):
    """The side-by-side table as aligned text; numbers right-aligned."""
    rows = table_rows(comparisons, ref_name, new_name)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = range(3, len(widths) - 1)
    lines = ["  ".join(cell.rjust(w) if i in numeric else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    return "\n".join(lines) + "\n"


CSV_HEADER = ("ref", "new", "collective", "type", "redop", "size", "samples_ref", "samples_new",
              "p50_ref_us", "p50_new_us", "p50_ratio", "p50_ratio_low", "p50_ratio_high",
              "busbw_ref", "busbw_new", "busbw_ratio", "p99_ref_us", "p99_new_us",
              "p99_ratio", "p99_ratio_low", "p99_ratio_high", "verdict")


def csv_rows(comparisons, ref_name, new_name):
    """The comparisons as rows under CSV_HEADER (for csv.writer)."""
    for c in comparisons:
        ref, new = c.ref or NO_FIGURES, c.new or NO_FIGURES
        yield (ref_name, new_name, *c.key, len(ref.samples), len(new.samples),
               ref.p50, new.p50, *c.p50, ref.busbw, new.busbw, c.ratio("busbw"),
               ref.p99, new.p99, *c.p99, c.verdict)


def csv_text(rows):
    """rows (header first) as CSV text."""
    import csv
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


# ---- plots ----

def new_figure(width=8, height=5):
    """A matplotlib Figure on the Agg canvas (files only: no pyplot, no display)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise UserError("matplotlib is missing: install python3-matplotlib "
                        "(scripts/install-deps) and run with /usr/bin/python3") from None
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def line_colors(count):
    """count colours along viridis: lines ordered by size stay readable past ten."""
    from matplotlib import colormaps   # after new_figure(), which checks it is there
    cmap = colormaps["viridis"]
    return [cmap(i / max(1, count - 1) * 0.9) for i in range(count)]


def file_part(*words):
    """Words joined into a safe file name part: all_reduce_float_sum."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", "_".join(words))


def size_axis(ax, sizes):
    """A log2 x axis of message sizes, ticks at the measured sizes (at most 12)."""
    sizes = sorted(set(sizes))
    step = max(1, math.ceil(len(sizes) / 12))
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes[::step], [human_size(s) for s in sizes[::step]], rotation=45)
    ax.minorticks_off()
    ax.set_xlabel("message size")


def save_figure(fig, folder, name, formats=("png", "svg")):
    """Write fig as folder/name.png and .svg (no date inside the SVG), by write_file."""
    for fmt in formats:
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=120, bbox_inches="tight",
                    metadata={"Date": None} if fmt == "svg" else None)
        write_file(os.path.join(folder, f"{name}.{fmt}"), buf.getvalue())
