"""scripts/nightly's pairs step: run `collbench pairs`, read its JSON, name and export its findings.

What pairs names (a slow, lossy or intermittent host or link, a flap of a
host's network device, a pair that failed) is a fault of tonight's fabric, not
a trend: nightly alarms on it at once, without the persistence rule.
"""
import os
import sys
from dataclasses import dataclass, field

import cb_launch
import collbench_results as cr
from cb_files import UserError, finite_number, read_json, shown

STATUSES = ("ok", "named", "failed", "skipped")
HOST_KINDS = ("slow", "lossy", "intermittent", "flap")
LINK_KINDS = ("slow", "lossy", "intermittent", "failed")
FILE = "pairs.json"
DEFAULT_TIMEOUT_S = 600
MB = 1e6


@dataclass
class Settings:
    enabled: bool = True
    quick: bool = True
    args: list = field(default_factory=list)
    mpirun: list = field(default_factory=list)    # empty: the sweep's
    timeout_s: int = 0                            # 0: min(600, run_timeout_s)


def read_settings(values, path, run_timeout_s):
    """The config's "pairs" object; UserError names the bad setting."""
    s = Settings()
    kinds = {"enabled": (bool, "true or false"), "quick": (bool, "true or false"),
             "args": (list, "a list of strings"), "mpirun": (list, "a list of strings"),
             "timeout_s": (int, "a whole number from 1 to 1000000")}
    for key, value in values.items():
        if key not in kinds:
            raise UserError(f"config {path}: unknown pairs setting '{shown(key)}' "
                            f"(known: {', '.join(kinds)})")
        kind, words = kinds[key]
        ok = isinstance(value, kind) and (kind is not int or not isinstance(value, bool))
        ok = ok and (kind is not list or all(isinstance(i, str) and i for i in value))
        ok = ok and (kind is not int or 1 <= value <= 10 ** 6)
        if not ok:
            raise UserError(f"config {path}: pairs setting '{key}' must be {words}")
        setattr(s, key, value)
    s.timeout_s = s.timeout_s or min(DEFAULT_TIMEOUT_S, run_timeout_s)
    return s


@dataclass
class Host:
    name: str
    flags: set
    bw: float | None          # median over its pairs, bytes/s
    lat: float | None         # seconds
    detail: list = field(default_factory=list)


@dataclass
class Link:
    a: str
    b: str
    flags: set
    bw: float | None
    lat: float | None
    detail: str = ""


@dataclass
class Result:
    """Tonight's pairs: status (STATUSES), why when failed, and what it measured and named."""
    status: str = "skipped"
    why: str = ""
    hosts: list = field(default_factory=list)
    links: list = field(default_factory=list)
    counters: list = field(default_factory=list)   # (host, counter, kind, delta)

    def named(self):
        """One line per host and link pairs named."""
        lines = [f"host {h.name}: {', '.join(h.detail)}" for h in self.hosts if h.flags]
        lines += [f"link {x.a} <-> {x.b}: {x.detail}" for x in self.links if x.flags]
        return lines


# ---- running it ----

def run(config, folder):
    """collbench pairs under the sweep's launcher into folder/pairs.json: a Result."""
    s = config.pairs
    if not s.enabled:
        return Result(why="off in the config")
    out = os.path.join(folder, FILE)
    command = ((s.mpirun or config.mpirun) + [config.collbench, "pairs"]
               + (["--quick"] if s.quick else []) + s.args + ["-J", out])
    print("nightly: running " + " ".join(command), file=sys.stderr)
    err_path = os.path.join(folder, "pairs.err")
    try:
        with open(os.path.join(folder, "pairs.txt"), "xb") as stdout, \
                open(err_path, "xb") as stderr:
            rc = cb_launch.run(command, stdout, stderr, s.timeout_s, env=cb_launch.launcher_env())
    except OSError as e:
        return Result(status="failed", why=f"cannot start {command[0]}: {e.strerror}")
    if rc is None:
        return Result(status="failed", why=f"no result within {s.timeout_s} s (stopped)")
    if not os.path.exists(out):
        return Result(status="failed", why=f"collbench pairs exited {rc} without results; "
                                            f"see {err_path}")
    try:
        result = load(out)
    except UserError as e:
        return Result(status="failed", why=f"unusable results: {e}")
    if rc not in (0, 1):
        result.status, result.why = "failed", f"collbench pairs exited {rc}; see {err_path}"
    return result


# ---- reading its JSON (src/tools/pairs_report.c) ----

def _get(obj, key, kind, where):
    value = obj.get(key) if isinstance(obj, dict) else None
    ok = {"bool": lambda v: isinstance(v, bool), "string": lambda v: isinstance(v, str),
          "list": lambda v: isinstance(v, list),
          "index": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
          "measure": lambda v: v is None or finite_number(v)}[kind]
    if not ok(value):
        raise UserError(f"{where}: '{key}' is missing or not a {kind}")
    return value


def _host_names(doc, path):
    """Each rank's host as a label: its name; name(address) where names repeat (hosts
    sharing a hostname); name (rank N) where both do (several ranks on one host)."""
    full = [shown(_get(h, "host", "string", f"{path}: hosts"), 80)
            for h in _get(doc, "hosts", "list", path)]
    names = [cr.host_name(f) for f in full]
    return [n if names.count(n) == 1 else f if full.count(f) == 1 else f"{n} (rank {r})"
            for r, (n, f) in enumerate(zip(names, full))]


def _bytes_per_s(mbps):
    return mbps * MB if mbps is not None and mbps >= 0 else None


def _seconds(us):
    return us / 1e6 if us is not None and us >= 0 else None


def _hosts(doc, names, path):
    hosts = []
    for rank, h in enumerate(doc["hosts"]):
        where = f"{path}: hosts[{rank}]"
        flags = {k for k in ("slow", "lossy", "intermittent") if _get(h, k, "bool", where)}
        host = Host(names[rank], flags, _bytes_per_s(_get(h, "median_bw_MBps", "measure", where)),
                    _seconds(_get(h, "median_lat_us", "measure", where)))
        if "slow" in flags:
            host.detail.append(f"slow ({_get(h, 'slow_pairs', 'index', where)} of "
                               f"{_get(h, 'pairs', 'index', where)} pairs slow)")
        host.detail += [k for k in ("lossy", "intermittent") if k in flags]
        hosts.append(host)
    for i, f in enumerate(_get(doc, "flaps", "list", path)):
        where = f"{path}: flaps[{i}]"
        rank = _get(f, "rank", "index", where)
        if rank >= len(hosts):
            raise UserError(f"{where}: rank {rank} is not a rank of the run")
        hosts[rank].flags.add("flap")
        hosts[rank].detail.append(
            f"flap of {shown(_get(f, 'interface', 'string', where))}: carrier_changes "
            f"{_get(f, 'carrier_changes_before', 'index', where)} -> "
            f"{_get(f, 'carrier_changes_after', 'index', where)} in pass "
            f"{_get(f, 'pass', 'index', where)}")
    return hosts


def _link(p, names, hosts, where):
    a, b = _get(p, "a", "index", where), _get(p, "b", "index", where)
    if max(a, b) >= len(names) or a == b:
        raise UserError(f"{where}: ranks {a} and {b} are not a pair of the run")
    flags, words = set(), []
    if p.get("failed") is not None:
        flags.add("failed")
        words.append(f"failed ({shown(_get(p, 'failed', 'string', where))})")
    # a link is named for what its hosts do not explain (as pairs names it)
    pct = _get(p, "retrans_pct", "measure", where)
    rdma = p.get("rdma_retrans")   # verbs; absent from older files
    lossy_word = ("lossy" if pct is None and not isinstance(rdma, int) else
                  f"lossy (RDMA retransmission counters +{rdma})" if pct is None else
                  f"lossy ({pct:.2f}% of TCP segments retransmitted)")
    slow = _get(p, "slow_bw", "bool", where) or _get(p, "slow_lat", "bool", where)
    for kind, own, word in (
            ("slow", slow, "slow"),
            ("lossy", _get(p, "lossy", "bool", where), lossy_word),
            ("intermittent", _get(p, "intermittent", "bool", where), "intermittent")):
        if own and kind not in hosts[a].flags and kind not in hosts[b].flags:
            flags.add(kind)
            words.append(word)
    return Link(names[a], names[b], flags, _bytes_per_s(_get(p, "bw_MBps", "measure", where)),
                _seconds(_get(p, "lat_us", "measure", where)), ", ".join(words))


def load(path):
    """A Result from a pairs -J file; UserError says what is wrong with it."""
    doc = read_json(path, f"pairs results {path}")
    if not isinstance(doc, dict) or doc.get("collbench_pairs") != 1:
        raise UserError(f"{path} is not a collbench pairs -J file")
    names = _host_names(doc, path)
    hosts = _hosts(doc, names, path)
    links = [_link(p, names, hosts, f"{path}: pairs[{i}]")
             for i, p in enumerate(_get(doc, "pairs", "list", path))]
    counters = []
    for i, c in enumerate(_get(doc, "port_counters", "list", path)):
        where = f"{path}: port_counters[{i}]"
        rank = _get(c, "rank", "index", where)
        if rank >= len(names):
            raise UserError(f"{where}: rank {rank} is not a rank of the run")
        counters.append((names[rank], _get(c, "counter", "string", where),
                         _get(c, "kind", "string", where), _get(c, "delta", "index", where)))
    result = Result(status="ok", hosts=hosts, links=links, counters=counters)
    if result.named():
        result.status = "named"
    return result


# ---- the textfile and the night's record ----

def prometheus(expo, result):
    """The collbench_pairs_* families (always all of them; samples when pairs ran)."""
    expo.gauge("collbench_pairs_status", "1 for how the last nightly's pairs step ended: "
               "ok (nothing named), named, failed (no usable result), skipped (off, or not run)",
               [({"status": s}, int(s == result.status)) for s in STATUSES])
    expo.gauge("collbench_pairs_named", "Hosts and links the last nightly's pairs named",
               [({}, len(result.named()))])
    expo.gauge("collbench_pairs_link_bandwidth_bytes_per_second", "Bidirectional bandwidth of a "
               "link (median over passes, the slower rank of the pair)",
               [({"a": x.a, "b": x.b}, x.bw) for x in result.links if x.bw is not None])
    expo.gauge("collbench_pairs_link_latency_seconds", "p50 latency of 8-byte exchanges on a link",
               [({"a": x.a, "b": x.b}, x.lat) for x in result.links if x.lat is not None])
    expo.gauge("collbench_pairs_link_flagged", "1: pairs named the link for this kind of fault "
               "(slow, lossy, intermittent, failed)",
               [({"a": x.a, "b": x.b, "kind": k}, int(k in x.flags))
                for x in result.links for k in LINK_KINDS])
    expo.gauge("collbench_pairs_host_bandwidth_bytes_per_second",
               "Median bandwidth of a host's pairs",
               [({"host": h.name}, h.bw) for h in result.hosts if h.bw is not None])
    expo.gauge("collbench_pairs_host_latency_seconds", "Median latency of a host's pairs",
               [({"host": h.name}, h.lat) for h in result.hosts if h.lat is not None])
    expo.gauge("collbench_pairs_host_flagged", "1: pairs named the host for this kind of fault "
               "(slow, lossy, intermittent, flap of its network device)",
               [({"host": h.name, "kind": k}, int(k in h.flags))
                for h in result.hosts for k in HOST_KINDS])
    expo.gauge("collbench_pairs_port_counter_delta", "RDMA port counters that moved during pairs",
               [({"host": h, "counter": c, "kind": k}, d) for h, c, k, d in result.counters])


def record(result):
    """For night.json: the step's status, what it named, and each link's figures (history)."""
    return {"status": result.status, "why": result.why, "named": result.named(),
            "links": [{"a": x.a, "b": x.b, "bw_bytes_per_second": x.bw, "lat_seconds": x.lat}
                      for x in result.links]}
