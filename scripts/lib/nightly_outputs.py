"""scripts/nightly's outputs: the printed report, the night's files, trend plots, the textfile."""
import datetime
import html
import os
import sys
import time

import cb_history as hist
import cb_prom
import collbench_results as cr
import nightly_pairs as pairs
from cb_files import UserError, finite_number, write_file

SWEEP_STATUSES = ("ok", "bootstrap", "suspect", "regression", "fault", "partial", "failed",
                  "interrupted", "error")


def sweep_status(state):
    """One word for the textfile: how the run ended."""
    if state.status in ("failed", "interrupted", "error"):
        return state.status
    if state.findings.alarms:
        return "regression"
    if state.pairs.status == "named":
        return "fault"
    if state.failures or state.pairs.status == "failed":
        return "partial"
    if state.status == "regressed":
        return "suspect"
    return "bootstrap" if state.status == "bootstrap" else "ok"


# ---- printed ----

def report(state, sections):
    tonight, f = state.tonight, state.findings
    print(f"nightly: night {state.stamp}: {len(tonight.rows)} sizes over {tonight.label}; "
          f"references: {', '.join(state.references) or 'none (first night: bootstrap)'}")
    sys.stdout.write(tables_text(sections))
    for line in state.failures:
        print(f"nightly: SWEEP FAILED {line}", file=sys.stderr)
    for note in f.notes:
        print(f"nightly: note: {note}", file=sys.stderr)
    alarmed = {tuple(a.ident()) for a in f.alarms}
    p = f.persistence
    for s in f.suspects:
        if tuple(s.ident()) not in alarmed:
            print(f"nightly: suspect {s} ({s.nights} of the last {p.of_last} nights; "
                  f"an alarm needs {p.nights})", file=sys.stderr)
    report_pairs(state.pairs)
    for a in f.alarms:
        extra = f" ({a.nights} of the last {p.of_last} nights)" if a.metric in ("busbw", "p99") else ""
        print(f"nightly: REGRESSION {a}{extra}", file=sys.stderr)
    print(f"nightly: {len(f.alarms)} regression(s), {len(f.suspects)} suspect(s), "
          f"{len(state.failures)} failed collective(s); {pairs_summary(state.pairs)}",
          file=sys.stderr)


def report_pairs(result):
    for line in pairs_lines(result):
        print(f"nightly: {line}", file=sys.stderr)


def pairs_summary(result):
    if result.status == "skipped":
        return f"pairs skipped{f' ({result.why})' if result.why else ''}"
    if result.status == "failed":
        return "pairs FAILED"
    named = result.named()
    return f"pairs named {len(named)} fault(s)" if named else "pairs named nothing"


def pairs_lines(result):
    """The pairs step's lines for regressions.txt and index.html."""
    lines = [f"PAIRS FAULT {line}" for line in result.named()]
    return lines + ([f"PAIRS FAILED {result.why}"] if result.status == "failed" else [])


def tables_text(sections):
    return "".join(f"\n# night vs ref = {name} ({path}): p50 and p99 us, busbw GB/s\n"
                   + cr.format_table(rows, "ref", "night") for name, path, rows in sections)


# ---- the night's files ----

def record_of(state):
    f = state.findings
    return {"stamp": state.stamp, "status": state.status, "references": state.references,
            "recent_nights": state.recent_nights,
            "suspects": [s.ident() for s in f.suspects], "alarms": [a.ident() for a in f.alarms],
            "failures": state.failures, "collbench_version": state.version,
            "pairs": pairs.record(state.pairs)}


def write_night(config, state, sections, refs, folder):
    """Everything of the night into its (work) folder; night.json last."""
    write_file(os.path.join(folder, "table.txt"), tables_text(sections))
    rows = [cr.CSV_HEADER]
    for name, _, comps in sections:
        rows += cr.csv_rows(comps, name, "night")
    write_file(os.path.join(folder, "verdicts.csv"), cr.csv_text(rows))
    lines = [f"REGRESSION {a}\n" for a in state.findings.alarms]
    lines += [f"suspect {s}\n" for s in state.findings.suspects]
    lines += [f"{line}\n" for line in pairs_lines(state.pairs)]
    write_file(os.path.join(folder, "regressions.txt"), "".join(lines))
    state.plots = plot_trends(config, state, refs, folder)
    stem = plot_link_trend(config, state, folder)
    state.plots += [stem] if stem else []
    write_file(os.path.join(folder, "index.html"), index_html(state, state.plots, ""))
    hist.write_record(folder, record_of(state))


def write_history_index(config, state):
    """HISTORY/index.html: the latest night's page, once that night exists."""
    write_file(os.path.join(config.history_dir, "index.html"),
               index_html(state, state.plots, state.stamp + "/"))


# ---- trend plots ----

METRICS = (("busbw", "busbw / reference's", "busbw_min_ratio"),
           ("p50", "p50 / reference's", None),
           ("p99", "p99 / reference's", "p99_max_ratio"))


def trend_nights(config, state):
    """[(datetime, stamp, run, regressed)] of the last trend_nights nights, tonight last."""
    past = []
    for stamp in hist.nights(config.history_dir)[-(config.trend_nights - 1):] \
            if config.trend_nights > 1 else []:
        try:
            run = cr.load_path(os.path.join(config.history_dir, stamp))
        except UserError:
            continue
        record = hist.read_record(config.history_dir, stamp) or {}
        past.append((stamp, run, record.get("status") == "regressed"))
    past.append((state.stamp, state.tonight, state.status == "regressed"))
    return [(datetime.datetime.strptime(s, "%Y%m%dT%H%M%SZ"), s, r, bad) for s, r, bad in past]


def plot_trends(config, state, refs, folder):
    """Per collective/type/op and metric, each size over the nights, relative to the reference."""
    reference = refs[0][1] if refs else state.tonight
    name = refs[0][0] if refs else "tonight (bootstrap)"
    nights = trend_nights(config, state)
    stems = []
    for group in sorted({key.group() for key in state.tonight.rows}):
        for metric, ylabel, threshold_key in METRICS:
            threshold = getattr(config.thresholds, threshold_key) if threshold_key else None
            stem = plot_trend(nights, reference, name, group, metric, ylabel, threshold, folder)
            if stem:
                stems.append(stem)
    return stems


def _trend_lines(nights, reference, group, metric):
    lines = {}
    for moment, _, run, _ in nights:
        for key, fig in run.rows.items():
            ref = reference.rows.get(key)
            value, base = getattr(fig, metric), ref and getattr(ref, metric)
            if key.group() == group and value and base:
                lines.setdefault(key.size, []).append((moment, value / base))
    return lines


def plot_trend(nights, reference, ref_name, group, metric, ylabel, threshold, folder):
    lines = _trend_lines(nights, reference, group, metric)
    if not lines:
        return None
    fig = cr.new_figure(10, 5)
    ax = fig.subplots()
    for color, (size, points) in zip(cr.line_colors(len(lines)), sorted(lines.items())):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3,
                color=color, label=cr.human_size(size))
    bad = [moment for moment, _, _, regressed in nights if regressed]
    for i, moment in enumerate(bad):
        ax.axvline(moment, color="red", alpha=0.35, linewidth=6,
                   label="regressed night" if i == 0 else None)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    if threshold:
        ax.axhline(threshold, color="red", linestyle="--", label=f"threshold {threshold:g}")
    _ratio_axis(ax, [r for points in lines.values() for _, r in points], threshold)
    fig.autofmt_xdate()
    ax.set_xlabel("night (UTC)")
    ax.set_ylabel(f"{ylabel} (log scale)")
    ax.set_title(f"{' '.join(group)}: {metric} over the nights, relative to the {ref_name}")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small", ncol=2, loc="center left", bbox_to_anchor=(1, 0.5))
    stem = cr.file_part("trend", metric, *group)
    cr.save_figure(fig, folder, stem, formats=("png",))
    return stem


def _link_points(stamp, rec, lines):
    """A night.json "pairs" record's link bandwidths (GB/s) into lines {link: [(moment, bw)]}."""
    moment = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ")
    links = rec.get("links") if isinstance(rec, dict) else None
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict) or not all(isinstance(link.get(k), str) for k in "ab"):
            continue
        bw = link.get("bw_bytes_per_second")
        if finite_number(bw) and bw > 0:
            lines.setdefault(f"{link['a']} <-> {link['b']}", []).append((moment, bw / 1e9))
    return moment


def plot_link_trend(config, state, folder):
    """Each link's pairs bandwidth over the last trend_nights nights (their night.json),
    nights on which pairs named something marked."""
    before = hist.nights(config.history_dir)[-(config.trend_nights - 1):] \
        if config.trend_nights > 1 else []
    nights = [(s, (hist.read_record(config.history_dir, s) or {}).get("pairs")) for s in before]
    lines, faults = {}, []
    for stamp, rec in nights + [(state.stamp, pairs.record(state.pairs))]:
        moment = _link_points(stamp, rec, lines)
        if isinstance(rec, dict) and rec.get("status") == "named":
            faults.append(moment)
    if not lines:
        return None
    fig = cr.new_figure(10, 5)
    ax = fig.subplots()
    for color, (link, points) in zip(cr.line_colors(len(lines)), sorted(lines.items())):
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3,
                color=color, label=link)
    for i, moment in enumerate(faults):
        ax.axvline(moment, color="red", alpha=0.35, linewidth=6,
                   label="pairs named a fault" if i == 0 else None)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter   # after new_figure(), which checks it is there
    plain = FuncFormatter(lambda v, _: f"{v:.3g}")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    fig.autofmt_xdate()
    ax.set_xlabel("night (UTC)")
    ax.set_ylabel("bidirectional bandwidth, GB/s (log scale)")
    ax.set_title("pairs: each link's bandwidth over the nights")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="x-small", ncol=1 + len(lines) // 16, loc="center left",
              bbox_to_anchor=(1, 0.5))
    stem = "trend_pairs_link_bandwidth"
    cr.save_figure(fig, folder, stem, formats=("png",))
    return stem


RATIO_TICKS = (0.05, 0.1, 0.2, 0.25, 0.33, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.5, 2, 3, 4,
               5, 10, 20)


def _ratio_axis(ax, ratios, threshold):
    """A log y axis of ratios, at least 0.8-1.25 (a flat line stays flat), ticks as ratios."""
    low = min(ratios + [0.8, threshold or 1]) / 1.05
    high = max(ratios + [1.25, threshold or 1]) * 1.05
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    ticks = [t for t in RATIO_TICKS if low <= t <= high]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()


def index_html(state, stems, prefix):
    """One page: the night's status, alarms and suspects, and every trend plot."""
    f = state.findings
    items = "".join(f"<li><b>REGRESSION</b> {html.escape(str(a))}</li>" for a in f.alarms)
    items += "".join(f"<li>suspect {html.escape(str(s))}</li>" for s in f.suspects)
    items += "".join(f"<li>SWEEP FAILED {html.escape(x)}</li>" for x in state.failures)
    items += "".join(f"<li><b>{html.escape(x)}</b></li>" for x in pairs_lines(state.pairs))
    plots = "".join(
        f'<figure><a href="{html.escape(prefix + s)}.png"><img src="{html.escape(prefix + s)}.png" '
        f'alt="{html.escape(s)}"></a><figcaption>{html.escape(s)}.png</figcaption></figure>\n'
        for s in stems)
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>collbench nightly "
            f"{html.escape(state.stamp)}</title><style>img{{max-width:100%}}"
            "figure{display:inline-block;margin:1em}</style></head><body>\n"
            f"<h1>collbench nightly {html.escape(state.stamp)}: {html.escape(state.status)}</h1>\n"
            f"<p><a href=\"{html.escape(prefix)}table.txt\">table.txt</a> "
            f"<a href=\"{html.escape(prefix)}verdicts.csv\">verdicts.csv</a> "
            f"<a href=\"{html.escape(prefix)}regressions.txt\">regressions.txt</a></p>\n"
            f"<ul>{items or '<li>nothing regressed</li>'}</ul>\n<h2>Trends</h2>\n{plots}"
            "</body></html>\n")


# ---- the Prometheus textfile ----

def _row_labels(tonight, key):
    return {"host": tonight.host, "link": tonight.link, "transport": tonight.transport,
            "collective": key.collective, "type": key.type, "redop": key.redop,
            "size": key.size}


def _per_size(tonight, attr, scale):
    if tonight is None:
        return []
    return [(_row_labels(tonight, k), getattr(f, attr) * scale)
            for k, f in sorted(tonight.rows.items()) if getattr(f, attr) is not None]


def _finding_samples(tonight, findings):
    if tonight is None:
        return []
    return [({**_row_labels(tonight, x.key), "metric": x.metric, "reference": x.reference}, 1)
            for x in findings]


def prometheus_text(state):
    t, f, expo = state.tonight, state.findings, cb_prom.Exposition()
    status = sweep_status(state)
    expo.gauge("collbench_build_info", "collbench version of the last nightly's results "
               "(or of its binary when no result came)",
               [({"version": state.version or "unknown"}, 1)])
    expo.gauge("collbench_sweep_status", "1 for how the last nightly ended: " +
               ", ".join(SWEEP_STATUSES), [({"status": s}, int(s == status))
                                           for s in SWEEP_STATUSES])
    expo.gauge("collbench_busbw_bytes_per_second", "Bus bandwidth, out-of-place, throughput pass",
               _per_size(t, "busbw", 1e9))
    expo.gauge("collbench_latency_p50_seconds", "Median per-iteration time (max over ranks)",
               _per_size(t, "p50", 1e-6))
    expo.gauge("collbench_latency_p99_seconds", "p99 per-iteration time (max over ranks)",
               _per_size(t, "p99", 1e-6))
    expo.gauge("collbench_wrong_elements", "Wrong elements found by the check (both placements)",
               _per_size(t, "nwrong", 1))
    expo.gauge("collbench_regression_suspect", "1: beyond threshold and uncertainty last night "
               "against this reference", _finding_samples(t, f.suspects))
    expo.gauge("collbench_regression_alarm", "1: a regression that persisted (or wrong elements, "
               "a missing size)", _finding_samples(t, f.alarms))
    expo.gauge("collbench_regressions", "Alarms raised by the last nightly", [({}, len(f.alarms))])
    expo.gauge("collbench_suspects", "Suspects found by the last nightly", [({}, len(f.suspects))])
    expo.gauge("collbench_failed_collectives", "Collectives of the last sweep without a result",
               [({}, len(state.failures))])
    pairs.prometheus(expo, state.pairs)
    expo.gauge("collbench_last_run_timestamp_seconds", "When the last nightly ended (Unix time)",
               [({}, int(time.time()))])
    return expo.text()


def write_textfile(path, state):
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise UserError(f"folder {folder} does not exist")
    write_file(path, prometheus_text(state))
