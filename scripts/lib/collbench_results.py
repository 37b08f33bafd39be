"""collbench results for the operator scripts (scripts/compare, scripts/nightly).

Loads the file that `collbench -J FILE` writes (src/report/json.c), checks the
fields these scripts read, and compares two runs by VERDICT_RULE.
"""
import json
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from typing import NamedTuple

VERDICT_RULE = """\
Verdicts compare a size's out-of-place figures in two runs, beyond the noise
measured within each run:
  spread   3 x 1.4826 x MAD of the size's per-iteration times (each the
           maximum over ranks); MAD = median of |time - median|. A robust
           3-sigma: a few stalled iterations do not widen it
  p50      faster/slower only when |p50 B - p50 A| > max(spread A, spread B)
  busbw    each run's band is busbw x spread / p50 (its spread, made
           relative); faster/slower only when |busbw B - busbw A| exceeds
           the larger band
  verdict  same: neither moved beyond the noise; faster or slower: one moved
           and the other agrees or stayed; mixed: they disagree; n/a: a run
           lacks the size or its per-iteration samples (-I 0)"""


class UserError(Exception):
    """A problem the user can fix; the message is one line that says what was wrong."""


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
    spread: float | None     # us, the noise of the per-iteration times: see spread_of
    nwrong: int | None       # wrong elements, both placements; None when not checked


NO_FIGURES = Figures(None, None, None, None, None)


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
}


def _field(obj, key, kind, where, nullable=False):
    """obj[key], checked to be of `kind` (a KINDS name); UserError names the path."""
    if key not in obj:
        raise UserError(f"{where}: missing '{key}'")
    value = obj[key]
    if value is None and nullable:
        return None
    if not KINDS[kind](value):
        expected = kind + (" or null" if nullable else "")
        raise UserError(f"{where}.{key}: expected {expected}, found {_kind_name(value)}")
    return value


def _read_document(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not a collbench JSON file: it is not UTF-8 text") from None
    if not text.strip():
        raise UserError(f"{path} is empty: not a collbench -J file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not valid JSON (line {e.lineno} column {e.colno}: {e.msg}); "
                        "truncated, or not a collbench -J file") from None
    if not isinstance(doc, dict) or "results" not in doc or "collbench_version" not in doc:
        raise UserError(f"{path} is not a collbench -J file: no 'collbench_version' and 'results'")
    return doc


# ---- noise and verdicts ----

def spread_of(samples):
    """3 x 1.4826 x MAD of the per-iteration times (a robust 3-sigma); None without samples."""
    values = [v for v in samples if v is not None]
    if not values:
        return None
    center = statistics.median(values)
    return 3 * 1.4826 * statistics.median(abs(v - center) for v in values)


def _moved(ref, new, band, lower_is_better):
    """'faster', 'slower' or 'same': did `new` leave ref +- band, and which way?"""
    if None in (ref, new, band):
        return "n/a"
    if abs(new - ref) <= band:
        return "same"
    return "faster" if (new < ref) == lower_is_better else "slower"


def latency_verdict(ref, new, metric="p50"):
    """A latency (metric 'p50' or 'p99') beyond the spread of both runs."""
    if ref.spread is None or new.spread is None:
        return "n/a"
    return _moved(getattr(ref, metric), getattr(new, metric), max(ref.spread, new.spread),
                  lower_is_better=True)


def _busbw_band(fig):
    if None in (fig.busbw, fig.spread, fig.p50) or fig.p50 <= 0:
        return None
    return fig.busbw * fig.spread / fig.p50


def busbw_verdict(ref, new):
    """The throughput busbw, beyond each run's per-iteration spread made relative."""
    bands = (_busbw_band(ref), _busbw_band(new))
    if None in bands:
        return "n/a"
    return _moved(ref.busbw, new.busbw, max(bands), lower_is_better=False)


def combined_verdict(busbw, p50):
    """One word for the row from the two metric verdicts."""
    if "n/a" in (busbw, p50):
        return "n/a"
    moved = {busbw, p50} - {"same"}
    if not moved:
        return "same"
    return moved.pop() if len(moved) == 1 else "mixed"


# ---- loading ----

def _per_iter_figures(half, where):
    per_iter = _field(half, "per_iter", "object", where, nullable=True)
    if per_iter is None:
        return None, None, None
    where += ".per_iter"
    p50 = _field(per_iter, "p50_us", "number", where, nullable=True)
    p99 = _field(per_iter, "p99_us", "number", where, nullable=True)
    samples = _field(per_iter, "iter_max_us", "list", where, nullable=True) or []
    for i, v in enumerate(samples):
        if v is not None and not _is_number(v):
            raise UserError(f"{where}.iter_max_us[{i}]: expected number, found {_kind_name(v)}")
    return p50, p99, spread_of(samples)


def _wrong_elements(result, where):
    """Wrong elements of both placements; None when neither was checked."""
    counts = []
    for placement in ("out_of_place", "in_place"):
        half = _field(result, placement, "object", where, nullable=True) or {}
        if half.get("nwrong") is not None:
            counts.append(_field(half, "nwrong", "integer", f"{where}.{placement}"))
    return sum(counts) if counts else None


def _figures(result, where):
    nwrong = _wrong_elements(result, where)
    half = _field(result, "out_of_place", "object", where, nullable=True)
    if half is None:
        return Figures(None, None, None, None, nwrong)
    where += ".out_of_place"
    busbw = _field(half, "busbw_gbps", "number", where, nullable=True)
    p50, p99, spread = _per_iter_figures(half, where)
    return Figures(busbw, p50, p99, spread, nwrong)


def _row_key(result, where):
    return RowKey(_field(result, "collective", "string", where),
                  _field(result, "type", "string", where),
                  _field(result, "redop", "string", where),
                  _field(result, "size", "integer", where))


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
                raise UserError(f"{where}.props.{key}: expected string, found {_kind_name(value)}")
        ranks.append((_field(rank, "host", "string", where), props))
    return ranks


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


def load_run(path):
    """Read and check one collbench -J file; UserError says what is wrong with it."""
    doc = _read_document(path)
    transport = _field(doc, "transport", "string", path, nullable=True) or "unknown"
    ranks = _rank_props(doc, path)
    run = Run(path=path, label=run_label(ranks, transport),
              start_time=_field(doc, "start_time", "string", path, nullable=True) or "",
              host=ranks[0][0] if ranks else "unknown", link=describe_link(ranks, transport),
              transport=transport, nranks=_field(doc, "nranks", "integer", path))
    run.rows = _load_rows(doc, path, run.notes)
    return run


def merge_runs(runs):
    """Several files of one sweep (one per collective) as one run; the first gives the header."""
    merged = Run(**{**runs[0].__dict__, "rows": {}, "notes": []})
    for run in runs:
        merged.notes += run.notes
        for key, figures in run.rows.items():
            if key in merged.rows:
                merged.notes.append(f"{run.path}: {key} was already read from another file; "
                                    "using the first")
            else:
                merged.rows[key] = figures
    return merged


# ---- comparing two runs ----

@dataclass
class Comparison:
    """One row measured by a reference run and a new run."""
    key: RowKey
    ref: Figures | None
    new: Figures | None
    busbw: str       # verdict of the busbw
    p50: str         # verdict of the p50
    verdict: str     # the two combined

    def ratio(self, metric):
        """new / ref of one metric ('busbw', 'p50', 'p99'); None when undefined."""
        if self.ref is None or self.new is None:
            return None
        ref, new = getattr(self.ref, metric), getattr(self.new, metric)
        if ref is None or new is None or ref == 0:
            return None
        return new / ref


def compare_rows(key, ref, new):
    if ref is None or new is None:
        return Comparison(key, ref, new, "n/a", "n/a", "n/a")
    busbw, p50 = busbw_verdict(ref, new), latency_verdict(ref, new)
    return Comparison(key, ref, new, busbw, p50, combined_verdict(busbw, p50))


def compare_runs(ref, new):
    """Every row of either run, in table order; UserError when they share none."""
    if not ref.rows.keys() & new.rows.keys():
        raise UserError(f"{ref.path} and {new.path} have no collective, type, op and size "
                        "in common: nothing to compare")
    keys = sorted(ref.rows.keys() | new.rows.keys())
    return [compare_rows(k, ref.rows.get(k), new.rows.get(k)) for k in keys]


# ---- printing ----

def human_size(size):
    """8 B, 32 KiB, 1 MiB: binary units, as collbench's -b and -e read them."""
    units = ("B", "KiB", "MiB", "GiB")
    step = 0
    while size >= 1024 and step < len(units) - 1:
        size /= 1024
        step += 1
    return f"{size:g} {units[step]}"


def _num(value, fmt):
    return "-" if value is None else format(value, fmt)


def _table_header(a, b):
    ratio = f"{b}/{a}"
    return ("collective", "type", "redop", "size", f"busbw {a}", f"busbw {b}", ratio,
            f"p50 {a}", f"p50 {b}", ratio, f"p99 {a}", f"p99 {b}", ratio, "verdict")


def _table_cells(c):
    ref, new = c.ref or NO_FIGURES, c.new or NO_FIGURES
    return (c.key.collective, c.key.type, c.key.redop, str(c.key.size),
            _num(ref.busbw, ".2f"), _num(new.busbw, ".2f"), _num(c.ratio("busbw"), ".2f"),
            _num(ref.p50, ".1f"), _num(new.p50, ".1f"), _num(c.ratio("p50"), ".2f"),
            _num(ref.p99, ".1f"), _num(new.p99, ".1f"), _num(c.ratio("p99"), ".2f"), c.verdict)


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


CSV_HEADER = ("ref", "new", "collective", "type", "redop", "size", "busbw_ref", "busbw_new",
              "p50_ref_us", "p50_new_us", "p99_ref_us", "p99_new_us",
              "busbw_verdict", "p50_verdict", "verdict")


def csv_rows(comparisons, ref_name, new_name):
    """The comparisons as rows under CSV_HEADER (for csv.writer)."""
    for c in comparisons:
        ref, new = c.ref or NO_FIGURES, c.new or NO_FIGURES
        yield (ref_name, new_name, *c.key, ref.busbw, new.busbw, ref.p50, new.p50,
               ref.p99, new.p99, c.busbw, c.p50, c.verdict)


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
    """Write fig as folder/name.png and .svg (no date inside the SVG)."""
    for fmt in formats:
        fig.savefig(os.path.join(folder, f"{name}.{fmt}"), dpi=120, bbox_inches="tight",
                    metadata={"Date": None} if fmt == "svg" else None)
