"""scripts/nightly's judgement: tonight's references, suspects, alarms, the night's status."""
import os
import sys
from dataclasses import dataclass, field

import cb_history as hist
import cb_stats
import collbench_results as cr
from cb_files import shown

P99_MIN = cr.P99_MIN_SAMPLES

RULES = f"""\
References: "baseline" (the config's, when given) and "recent": the
per-iteration samples of the last compare_last accepted nights pooled (busbw:
their median). A night is accepted when nothing in it regressed; a regressed
night never becomes a reference (nightly --accept STAMP makes one). The first
night, with neither reference, bootstraps the history: it is accepted as is.

Tonight a size is a suspect, against each reference, when
  busbw < busbw_min_ratio x the reference's   (default 0.9), and, with
         beyond_noise (default true), tonight's median per-iteration time is
         slower beyond its uncertainty: the whole {cb_stats.CONFIDENCE:.0%} interval of the
         ratio of medians above 1 (order statistics: compare --help);
  p99  > p99_max_ratio x the reference's     (default 1.2), and, with
         beyond_noise, the whole {cb_stats.CONFIDENCE:.0%} interval of the ratio of p99s
         above 1. p99 is judged only when tonight and the reference each
         have at least {P99_MIN} per-iteration samples (collbench -n, times -N
         cycles): with fewer, a p99 has no interval of its own (at -n 20 it
         is the slowest iteration).
Without per-iteration samples on either side the threshold alone decides.
A suspect raises an ALARM (exit 1) only when the same size and metric was a
suspect on at least persistence.nights of the last persistence.of_last
nights, tonight included (default 2 of 3). Wrong elements (each placement's
count must be a whole number >= 0; they are summed, never netted) and a size
a reference has but tonight lacks (for the collectives that ran) are alarms
at once."""


@dataclass
class Thresholds:
    busbw_min_ratio: float = 0.9
    p99_max_ratio: float = 1.2
    beyond_noise: bool = True


@dataclass
class Persistence:
    nights: int = 2
    of_last: int = 3


def _read_settings(obj, values, path, name, valid, words):
    for key, value in values.items():
        if not hasattr(obj, key):
            raise cr.UserError(f"config {path}: unknown {name} '{shown(key)}' "
                               f"(known: {', '.join(type(obj).__dataclass_fields__)})")
        if not valid(key, value):
            raise cr.UserError(f"config {path}: {name} '{key}' must be {words(key)}")
        setattr(obj, key, value)
    return obj


def read_thresholds(values, path):
    def valid(key, value):
        if key == "beyond_noise":
            return isinstance(value, bool)
        return cr.KINDS["measure"](value) and 0 < value < 1e6
    return _read_settings(Thresholds(), values, path, "threshold", valid,
                          lambda k: "true or false" if k == "beyond_noise"
                          else "a number above 0")


def read_persistence(values, path):
    p = _read_settings(Persistence(), values, path, "persistence setting",
                       lambda k, v: cr.KINDS["integer"](v) and 1 <= v <= 1000,
                       lambda k: "a whole number from 1 to 1000")
    if p.nights > p.of_last:
        raise cr.UserError(f"config {path}: persistence.nights ({p.nights}) cannot exceed "
                           f"persistence.of_last ({p.of_last})")
    return p


# ---- references ----

def _pooled(runs, label):
    """One run whose rows pool the runs' samples (busbw: the median over runs)."""
    rows = {}
    for key in sorted({k for run in runs for k in run.rows}):
        figures = [run.rows[key] for run in runs if key in run.rows]
        samples = tuple(sorted(s for f in figures for s in f.samples))
        busbws = sorted(f.busbw for f in figures if f.busbw is not None)
        busbw = busbws[(len(busbws) - 1) // 2] if busbws else None
        p50 = cb_stats.quantile(samples, 0.5) if samples else None
        p99 = cb_stats.quantile(samples, 0.99) if samples else None
        rows[key] = cr.Figures(busbw, p50, p99, None, samples)
    first = runs[-1]
    return cr.Run(path=label, label=first.label, start_time="", host=first.host,
                  link=first.link, transport=first.transport, nranks=first.nranks,
                  hosts=first.hosts, options=first.options, rows=rows)


def references(config, baseline, tonight_stamp):
    """[(name, run)] to judge tonight against, and the stamps 'recent' pooled."""
    refs = [("baseline", baseline)] if baseline else []
    accepted = []
    for stamp in hist.nights(config.history_dir):
        if stamp >= tonight_stamp:
            continue
        record = hist.read_record(config.history_dir, stamp)
        if record and record["status"] in hist.ACCEPTED_STATUSES:
            accepted.append(stamp)
    used, runs = [], []
    for stamp in accepted[-config.compare_last:]:
        try:
            runs.append(cr.load_path(os.path.join(config.history_dir, stamp)))
            used.append(stamp)
        except cr.UserError as e:
            print(f"nightly: note: night {stamp} left out of the reference: {e}", file=sys.stderr)
    if runs:
        refs.append(("recent", _pooled(runs, f"{len(runs)} accepted night(s) pooled: "
                                              f"{', '.join(used)}")))
    return refs, used


# ---- findings ----

@dataclass
class Finding:
    key: cr.RowKey
    metric: str       # busbw, p99, wrong_elements, missing
    reference: str    # baseline, recent, check
    detail: str
    nights: int = 1   # of the last persistence.of_last nights, how many had it

    def __str__(self):
        return f"{self.key}: {self.metric}: {self.detail}"

    def ident(self):
        return [*self.key, self.metric]


@dataclass
class Findings:
    suspects: list = field(default_factory=list)   # beyond threshold and uncertainty tonight
    alarms: list = field(default_factory=list)     # persisted suspects, wrong elements, missing
    notes: list = field(default_factory=list)
    persistence: Persistence = field(default_factory=Persistence)


def _interval_words(point, low, high):
    if low is None:
        return f"x{point:.3g} (no interval: too few samples)"
    return f"x{point:.3g} [{low:.3g}-{high:.3g}]"


def _busbw_suspect(key, ref, new, name, thresholds):
    if ref.busbw in (None, 0) or new.busbw is None:
        return None
    ratio = new.busbw / ref.busbw
    if ratio >= thresholds.busbw_min_ratio:
        return None
    why = ""
    if ref.samples and new.samples:
        point, low, high = cb_stats.ratio_interval(ref.samples, new.samples, 0.5)
        if thresholds.beyond_noise and low is not None and low <= 1:
            return None
        why = f"; p50 {_interval_words(point, low, high)}"
    return Finding(key, "busbw", name, f"{new.busbw:.4g} GB/s < {thresholds.busbw_min_ratio:g} x "
                   f"{name}'s {ref.busbw:.4g} GB/s (x{ratio:.3g}{why})")


def _p99_suspect(key, ref, new, name, thresholds, notes):
    if not ref.samples or not new.samples:
        return None
    if min(len(ref.samples), len(new.samples)) < P99_MIN:
        notes.add(min(len(ref.samples), len(new.samples)))
        return None
    point, low, high = cb_stats.ratio_interval(ref.samples, new.samples, 0.99)
    if point is None or point <= thresholds.p99_max_ratio:
        return None
    if thresholds.beyond_noise and (low is None or low <= 1):
        return None
    return Finding(key, "p99", name, f"{new.p99:.4g} us > {thresholds.p99_max_ratio:g} x "
                   f"{name}'s {ref.p99:.4g} us ({_interval_words(point, low, high)})")


def _previous_suspects(config, tonight_stamp):
    """The suspect lists (as tuples) of the nights before tonight within persistence.of_last."""
    before = [s for s in hist.nights(config.history_dir) if s < tonight_stamp]
    wanted = before[-(config.persistence.of_last - 1):] if config.persistence.of_last > 1 else []
    found = []
    for stamp in wanted:
        record = hist.read_record(config.history_dir, stamp) or {}
        suspects = record.get("suspects") if isinstance(record.get("suspects"), list) else []
        found.append({tuple(s) for s in suspects if isinstance(s, list)})
    return found


def judge(config, refs, tonight, tonight_stamp):
    """Tonight's suspects and alarms against every reference."""
    findings = Findings(persistence=config.persistence)
    few_p99 = set()
    for name, ref in refs:
        groups = {k.group() for k in tonight.rows}
        for key in sorted(ref.rows.keys() | tonight.rows.keys()):
            r, n = ref.rows.get(key), tonight.rows.get(key)
            if n is None and r is not None and key.group() in groups:
                findings.alarms.append(Finding(key, "missing", name,
                                               f"measured by the {name}, not tonight"))
            if r is None or n is None:
                continue
            for found in (_busbw_suspect(key, r, n, name, config.thresholds),
                          _p99_suspect(key, r, n, name, config.thresholds, few_p99)):
                if found:
                    findings.suspects.append(found)
    for key, fig in sorted(tonight.rows.items()):
        if fig.nwrong:
            findings.alarms.append(Finding(key, "wrong_elements", "check",
                                           f"{fig.nwrong} wrong elements"))
    if few_p99:
        findings.notes.append(f"p99 not judged: {min(few_p99)} per-iteration samples on a side, "
                              f"fewer than the {P99_MIN} a p99 interval needs")
    previous = _previous_suspects(config, tonight_stamp)
    alarmed = set()
    for s in findings.suspects:
        s.nights = 1 + sum(tuple(s.ident()) in night for night in previous)
        if s.nights >= config.persistence.nights and tuple(s.ident()) not in alarmed:
            findings.alarms.append(s)
            alarmed.add(tuple(s.ident()))
    return findings


def night_status(findings, refs, pairs_named):
    """regressed: any suspect or alarm; fault: pairs named a host or link (never a
    reference, not even the first night's); bootstrap: no reference; else accepted."""
    if refs and (findings.suspects or findings.alarms):
        return "regressed"
    if pairs_named:
        return "fault"
    return "bootstrap" if not refs else "accepted"
