"""Measured tables: the data files under results/measured/ and their Markdown.

A data file is what one benchmark run measured, in the layout its bench
script prints, with the run's metadata beside the figures:

  {"format": 1,
   "source": "scripts/bench-shm",          the script that writes it (--record)
   "run": {"date": "2026-11-30 15:43 UTC", "commit": "43b17bd",
           "machine": "...", "command": "...", "note": "..."},
   "tables": {"NAME": {"columns": [{"name": "size (B)", "align": "r",
                                    "format": "d"}, ...],
                       "rows": [[8, "rd", 0.039, ...], ...]}}}

A cell is null ("-"), a string (as is), a number (the column's format), a
list of numbers (each formatted, joined by the column's "join", " / " by
default) or {"median": m, "min": a, "max": b} ("m [a-b]", over rounds).
Formats: a Python format spec (".3f", ".3g", "d"), "g4" (.4g, but 12345
rather than 1.234e+04), "size" (16K, 64M) or "iec" (16 KiB, 64 MiB).

usage: measured.py meta FILE [--load LOADAVG] [--where TEXT] -- COMMAND...
           writes the run's metadata (date, commit, machine, command) to FILE;
           COMMAND is the bench script's command line (--record left out:
           it says where the data goes, not what was measured)
       measured.py show DATAFILE [TABLE...]
           prints the tables as Markdown, each with its metadata line
       measured.py record DATAFILE NAME [--root DIR]
           makes DATAFILE results/measured/NAME; the file it replaces moves to
           results/measured/history/ (named after its run's date), so the
           docs show the latest run and the earlier ones stay data
"""
import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import cb_files  # noqa: E402

FORMAT = 1
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))


def spread(vals, zero_is_value=False):
    """A cell over rounds: {"median"} for one value, with "min" and "max" for
    more; None for no value. None never counts, 0 only with zero_is_value
    (a counter that stayed at 0; a bandwidth of 0 is a broken-off run)."""
    vals = [v for v in vals if v is not None and (v or zero_is_value)]
    if not vals:
        return None
    m = statistics.median(vals)
    return {"median": m} if len(vals) == 1 else {"median": m, "min": min(vals), "max": max(vals)}


def busbw(run):
    """{size: out-of-place busbw GB/s} of a collbench -J document; {} for None."""
    return {r["size"]: r["out_of_place"]["busbw_gbps"] for r in run["results"]} if run else {}


def ratios(a, b):
    """a[i] / b[i] of each round where both have a non-zero figure."""
    return [x / y for x, y in zip(a, b) if x and y]


class DataError(cb_files.UserError):
    """A data file that is not what this module writes; the message says where."""


def fmt_size(s):
    """8, 16K, 64M, 1G: the size column of collbench's own tables."""
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if s >= div and s % div == 0:
            return f"{s // div}{unit}"
    return str(s)


def fmt_iec(s):
    """8 B, 16 KiB, 64 MiB."""
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if s >= div and s % div == 0:
            return f"{s // div} {unit}"
    return f"{s} B"


def fmt_number(v, spec):
    if spec == "g4":   # 4 significant digits, no exponent below 10^4, whole numbers above
        return format(v, ".4g") if abs(v) < 1e4 else f"{v:.0f}"
    if spec == "size":
        return fmt_size(int(v))
    if spec == "iec":
        return fmt_iec(int(v))
    return format(v, spec or "")


def fmt_cell(v, col):
    spec = col.get("format")
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return col.get("join", " / ").join(fmt_cell(x, col) for x in v)
    if isinstance(v, dict):
        m = fmt_cell(v.get("median"), col)
        if v.get("min") is None or v.get("max") is None:
            return m
        return f"{m} [{fmt_cell(v['min'], col)}-{fmt_cell(v['max'], col)}]"
    return fmt_number(v, spec)


def table_lines(table):
    """One table as Markdown lines (header, alignment, rows)."""
    cols = table["columns"]
    lines = ["| " + " | ".join(c["name"] for c in cols) + " |",
             "|" + "".join("---:|" if c.get("align", "r") == "r" else "---|" for c in cols)]
    for row in table["rows"]:
        if len(row) != len(cols):
            raise DataError(f"a row has {len(row)} cells for {len(cols)} columns: {row!r}")
        lines.append("| " + " | ".join(fmt_cell(v, c) for v, c in zip(row, cols)) + " |")
    return lines


def meta_line(doc, data_link=None):
    """The line under a table: when, at which commit, on what, by which command."""
    run = doc["run"]
    parts = [f"Measured {run['date']} at commit {run['commit']}", f"on {run['machine']}"]
    text = ", ".join(parts) + f"; `{run['command']}`."
    if run.get("note"):
        text += " " + run["note"][0].upper() + run["note"][1:].rstrip(".") + "."
    if data_link:
        text += f" Data: [{data_link[0]}]({data_link[1]})."
    return "*" + text + "*"


def load(path):
    """A data file, checked enough that rendering cannot fail half-way."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise DataError(f"{path} is not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise DataError(f"{path}: not a measured-table file (\"format\": {FORMAT} missing)")
    for key in ("date", "commit", "machine", "command"):
        if not isinstance(doc.get("run", {}).get(key), str):
            raise DataError(f"{path}: run.{key} missing (every table says when, where and how)")
    tables = doc.get("tables")
    if not isinstance(tables, dict) or not tables:
        raise DataError(f"{path}: no tables")
    for name, t in tables.items():
        if not isinstance(t.get("columns"), list) or not isinstance(t.get("rows"), list):
            raise DataError(f"{path}: table {name} needs columns and rows")
        if not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in t["columns"]):
            raise DataError(f"{path}: table {name}: every column needs a name")
    return doc


def write_text(path, text):
    """Through the scripts' one safe writer: a reader never sees half a file."""
    try:
        cb_files.write_file(path, text)
    except cb_files.UserError as e:
        raise DataError(str(e)) from None


def dumps(doc):
    """JSON with one line per column and per row: a re-run's diff shows the rows that moved."""
    one = lambda v: json.dumps(v, ensure_ascii=False)
    out = ["{"]
    for k, v in doc.items():
        if isinstance(v, dict) and k != "tables":
            out += [f" {one(k)}: {{"] + [f"  {one(a)}: {one(b)}," for a, b in v.items()]
            out[-1] = out[-1].rstrip(",")
            out.append(" },")
        elif k != "tables":
            out.append(f" {one(k)}: {one(v)},")
    out.append(' "tables": {')
    for i, (name, t) in enumerate(doc["tables"].items()):
        out.append(f"  {one(name)}: {{")
        out += [f'   "columns": ['] + [f"    {one(c)}," for c in t["columns"]]
        out[-1] = out[-1].rstrip(",")
        out += ["   ],", '   "rows": ['] + [f"    {one(r)}," for r in t["rows"]]
        out[-1] = out[-1].rstrip(",")
        out += ["   ]", "  }" + ("," if i < len(doc["tables"]) - 1 else "")]
    return "\n".join(out + [" }", "}", ""])


def write(path, doc):
    text = dumps(doc)
    if json.loads(text) != doc:
        raise DataError(f"{path}: the compact form does not read back as written")
    write_text(path, text)


def _run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def commit():
    """The commit of the source tree, "-dirty" when what is measured (the code,
    the build, the scripts) has uncommitted changes; recorded data and docs
    do not count."""
    head = _run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]) or "unknown"
    dirty = _run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no", "--",
                  "src", "bench", "scripts", "Makefile"])
    return head + ("-dirty" if dirty else "")


def machine():
    """CPUs, CPU model, kernel and MPI of this machine, in one line."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    mpi = _run(["mpirun", "--version"]).splitlines()
    mpi = mpi[0].replace("mpirun (Open MPI)", "Open MPI") if mpi else "no mpirun"
    return f"{os.cpu_count()} CPUs ({model or platform.machine()}), Linux {platform.release()}, {mpi}"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def run_meta(command, started=None, load_before=None, where=None):
    """The metadata of a run that starts now (or at `started`); `where`: what
    runs it on this machine (a VM, say)."""
    meta = {"date": started or time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "commit": commit(), "machine": f"{where} on {machine()}" if where else machine(),
            "command": command}
    if load_before:
        meta["note"] = f"host load average {load_before} before"
    return meta


def finish(doc, meta_path, source, command):
    """doc with "run" from meta_path (written when the run began) and the load after."""
    try:
        with open(meta_path) as f:
            run = json.load(f)
    except (OSError, json.JSONDecodeError):
        run = run_meta(command)
    if run.get("note", "").endswith("before"):
        run["note"] += f", {loadavg()} after"
    return {"format": FORMAT, "source": source, "run": run, "tables": doc}


def history_name(name, doc):
    """bench-shm.json of a run on 2026-11-30 15:43 UTC: bench-shm-2026-11-30T1543.json."""
    stamp = "".join(c for c in doc["run"]["date"] if c.isdigit())
    stamp = f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[8:12]}" if len(stamp) >= 12 else stamp
    return f"{os.path.splitext(name)[0]}-{stamp}.json"


def record(src, name, root=ROOT):
    """src becomes results/measured/name; what it replaces goes to history/."""
    new = load(src)
    dst = os.path.join(root, "results", "measured", name)
    if os.path.exists(dst):
        old = load(dst)
        hist = os.path.join(root, "results", "measured", "history")
        os.makedirs(hist, exist_ok=True)
        os.replace(dst, os.path.join(hist, history_name(name, old)))
    write(dst, new)


def show(doc, names=None):
    out = []
    for name in names or doc["tables"]:
        if name not in doc["tables"]:
            raise DataError(f"no table {name} (there are: {', '.join(doc['tables'])})")
        out += [""] + table_lines(doc["tables"][name])
    return "\n".join(out + ["", meta_line(doc), ""])


def main(argv):
    p = argparse.ArgumentParser(prog="measured.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("meta")
    m.add_argument("file")
    m.add_argument("--load")
    m.add_argument("--where")
    m.add_argument("command", nargs="+")
    s = sub.add_parser("show")
    s.add_argument("file")
    s.add_argument("tables", nargs="*")
    r = sub.add_parser("record")
    r.add_argument("file")
    r.add_argument("name")
    r.add_argument("--root", default=ROOT)
    a = p.parse_args(argv[1:])
    try:
        if a.cmd == "meta":
            with open(a.file, "w") as f:
                command = shlex.join(w for w in a.command if w != "--record")
                json.dump(run_meta(command, None, a.load, a.where), f, indent=1)
        elif a.cmd == "record":
            record(a.file, a.name, a.root)
        else:
            print(show(load(a.file), a.tables))
    except (DataError, OSError) as e:
        print(f"measured.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))


def run_checked(main, argv):
    """main(argv), with a one-line error (exit 2) for a file that is not what it should
    be: the table scripts' shared entry."""
    name = os.path.basename(argv[0])
    try:
        return main(argv)
    except cb_files.UserError as e:
        print(f"{name}: {e}", file=sys.stderr)
    except (KeyError, TypeError, IndexError, ValueError, ZeroDivisionError) as e:
        print(f"{name}: a result file lacks a field or has one of the wrong kind "
              f"({type(e).__name__}: {e}); not a collbench -J file?", file=sys.stderr)
    except OSError as e:
        print(f"{name}: cannot write {e.filename}: {e.strerror}", file=sys.stderr)
    return 2
