#!/bin/bash
# The measured tables in docs/ are what results/measured/ says
# (scripts/docs-tables), a changed data file changes them, and the bench
# scripts' table code writes data files that docs-tables can render
# (recording one keeps the run it replaces under results/measured/history/).
source "$(dirname "$0")/../lib.sh"
TABLES=$ROOT/scripts/docs-tables

# a copy of the docs and their data to change
copy_tree() {
    rm -rf "$TMP/root"
    mkdir -p "$TMP/root/results"
    cp -r "$ROOT/docs" "$TMP/root/docs"
    cp -r "$ROOT/results/measured" "$TMP/root/results/measured"
}

name="docs: every measured table is what its data file says"
if "$TABLES" --check > "$TMP/out" 2> "$TMP/err"; then pass "$name"
else fail "$name: $(tail -1 "$TMP/err")"; head -20 "$TMP/out"; fi

name="docs: every data file under results/measured/ is shown in a doc"
unused=
for f in "$ROOT"/results/measured/*.json; do
    grep -q "<!-- table: measured/$(basename "$f")[ >]" "$ROOT"/docs/*.md || unused+=" $(basename "$f")"
done
if [ -z "$unused" ]; then pass "$name"; else fail "$name: not shown:$unused"; fi

name="docs: a changed data file changes the table, and --check sees it"
copy_tree
python3 - "$TMP/root/results/measured/bench-shm.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
doc["tables"]["all_reduce"]["rows"][0][2] = 123.456
doc["run"]["commit"] = "c0ffee1"
json.dump(doc, open(sys.argv[1], "w"))
EOF
"$TABLES" --check --root "$TMP/root" > "$TMP/out" 2> "$TMP/err"; rc_stale=$?
"$TABLES" --root "$TMP/root" > /dev/null 2>&1; rc_regen=$?
"$TABLES" --check --root "$TMP/root" > /dev/null 2>&1; rc_after=$?
if [ $rc_stale = 1 ] && grep -q 'performance.md' "$TMP/err" && [ $rc_regen = 0 ] && [ $rc_after = 0 ] &&
    grep -q '^| 8 | rd | 123.456 |' "$TMP/root/docs/performance.md" &&
    grep -q 'at commit c0ffee1' "$TMP/root/docs/performance.md" &&
    diff -q "$ROOT/docs/verbs.md" "$TMP/root/docs/verbs.md" > /dev/null; then
    pass "$name"
else
    fail "$name: --check exit $rc_stale, regenerate $rc_regen, --check after $rc_after"; cat "$TMP/err"
fi

name="docs: a marker without its end, or naming a missing table, is an error naming the line"
copy_tree
printf 'x\n<!-- table: measured/bench-shm.json all_reduce -->\nold\n' > "$TMP/root/docs/open.md"
"$TABLES" --root "$TMP/root" > /dev/null 2> "$TMP/err1"; rc1=$?
printf '<!-- table: measured/bench-shm.json nosuch -->\n<!-- /table -->\n' > "$TMP/root/docs/open.md"
"$TABLES" --root "$TMP/root" > /dev/null 2> "$TMP/err2"; rc2=$?
if [ $rc1 = 2 ] && grep -q 'open.md:2: .* has no `<!-- /table -->`' "$TMP/err1" &&
    [ $rc2 = 2 ] && grep -q 'open.md:1: measured/bench-shm.json has no table nosuch' "$TMP/err2" &&
    diff -q "$ROOT/docs/performance.md" "$TMP/root/docs/performance.md" > /dev/null; then
    pass "$name"
else
    fail "$name: exit $rc1 / $rc2: $(cat "$TMP/err1" "$TMP/err2")"
fi

name="docs: bench-shm's data file, recorded, is what the docs show; the run it replaces moves to history"
copy_tree
mkdir -p "$TMP/run"
python3 - "$TMP/run" <<'EOF'
import json, sys
d = sys.argv[1]
def result(size, busbw, p50):
    return {"size": size, "algo": "ring", "out_of_place": {"busbw_gbps": busbw, "per_iter": {"p50_us": p50}}}
for coll in ("all_reduce", "all_gather", "reduce_scatter", "alltoall"):
    for side, bw in (("ours", 4.0), ("mpi", 2.0)):
        json.dump({"nranks": 2, "transport": "shm", "results": [result(1024, bw, 10.0 / bw)]},
                  open(f"{d}/{coll}.{side}.bandwidth.json", "w"))
json.dump({"date": "2030-01-02 03:04 UTC", "commit": "abc1234", "machine": "a test machine",
           "command": "scripts/bench-shm"}, open(f"{d}/run.json", "w"))
EOF
old_date=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run"]["date"])' \
    "$ROOT/results/measured/bench-shm.json" | tr -dc 0-9 | sed -E 's/^(....)(..)(..)(....).*/\1-\2-\3T\4/')
if python3 "$ROOT/scripts/lib/bench_table.py" "$TMP/run" all_reduce all_gather reduce_scatter alltoall > "$TMP/out" 2> "$TMP/err" &&
    python3 "$ROOT/scripts/lib/measured.py" record "$TMP/run/measured.json" bench-shm.json --root "$TMP/root" 2>> "$TMP/err" &&
    cmp -s "$ROOT/results/measured/bench-shm.json" "$TMP/root/results/measured/history/bench-shm-$old_date.json" &&
    "$TABLES" --root "$TMP/root" > /dev/null 2>> "$TMP/err" &&
    grep -q '^| 1024 | ring | 4.000 | 2.000 | 2.00 | 2.50 | 5.00 | 2.00 |$' "$TMP/root/docs/performance.md" &&
    grep -q 'Measured 2030-01-02 03:04 UTC at commit abc1234, on a test machine' "$TMP/root/docs/performance.md" &&
    grep -q "(../results/measured/history/bench-shm-$old_date.json) |\$" "$TMP/root/docs/performance.md"; then
    pass "$name"
else
    fail "$name: $(tail -3 "$TMP/err")"
fi

name="docs: every kind of cell renders as the bench scripts print it"
if out=$(PYTHONPATH=$ROOT/scripts/lib python3 - <<'EOF2' 2>&1
import measured
cols = [{"name": "size", "format": "size"}, {"name": "iec", "format": "iec"}, {"name": "g4", "format": "g4"},
        {"name": "pair", "format": ".3g"}, {"name": "rounds", "format": ".2f"}, {"name": "span", "format": "d", "join": "-"},
        {"name": "text", "align": "l"}, {"name": "none", "format": ".2f"}]
t = {"columns": cols, "rows": [[65536, 1 << 20, 12345.6, [0.01234, 1420.0], {"median": 0.834, "min": 0.8, "max": 0.9},
                                [161, 166], "ring", None],
                               [8, 8, 0.72, [3.0, 2.5], {"median": 1.0}, [1, 2], "rd", 1]]}
want = ["| size | iec | g4 | pair | rounds | span | text | none |",
        "|---:|---:|---:|---:|---:|---:|---|---:|",
        "| 64K | 1 MiB | 12346 | 0.0123 / 1.42e+03 | 0.83 [0.80-0.90] | 161-166 | ring | - |",
        "| 8 | 8 B | 0.72 | 3 / 2.5 | 1.00 | 1-2 | rd | 1.00 |"]
got = measured.table_lines(t)
assert got == want, "\n".join(got)
try:
    measured.table_lines({"columns": cols, "rows": [[1, 2]]})
    raise SystemExit("a short row was rendered")
except measured.DataError as e:
    assert "2 cells for 8 columns" in str(e), e
EOF2
); then pass "$name"; else fail "$name: $out"; fi

name="docs: bench-verbs' tables: ratios per round against perftest around it, targets, option headers"
rm -rf "$TMP/vrun" && mkdir -p "$TMP/vrun"
python3 - "$TMP/vrun" <<'EOF2'
import json, sys
d = sys.argv[1]
M = 1 << 20
def doc(results, props=None):
    return {"ranks": [{"rank": 0, "props": props or {}}], "results": results}
def bw(size, busbw, algo="ring"):
    return {"size": size, "algo": algo, "algo_asked": algo, "out_of_place": {"busbw_gbps": busbw, "time_us": 1.0}}
def lat(asked, algo, p50, mean):
    return {"size": 8, "algo": algo, "algo_asked": asked,
            "out_of_place": {"time_us": mean, "per_iter": {"p50_us": p50, "min_us": p50 / 2}}}
for r, scale in ((1, 1.0), (2, 0.5)):
    json.dump(doc([bw(4 * M, 0.18 * scale)]), open(f"{d}/ours.r{r}.json", "w"))
    json.dump(doc([bw(4 * M, 0.2 * scale)]), open(f"{d}/gather.r{r}.json", "w"))
    json.dump(doc([lat("auto", "rd", 60.0, 40.0), lat("ring", "ring", 120.0, 90.0)]), open(f"{d}/lat.r{r}.json", "w"))
    json.dump(doc([lat("rd", "rd", 0, 50.0)]), open(f"{d}/lat-pkts.r{r}.json", "w"))
    for key, prop in (("split", "split_data"), ("ar", "adaptive_routing"), ("ro", "relaxed_ordering")):
        for v, b in (("off", 0.16), ("on", 0.12)):
            json.dump(doc([bw(16 * M, b * scale)], {prop: f"{v} (--{key} {v})"}), open(f"{d}/opt-{key}-{v}.r{r}.json", "w"))
# per direction 0.2 GB/s in run 1 and 2 (around round 1), 0.1 in run 3 (round 2 is the mean of 0.2 and 0.1)
mib = 0.2e9 * 2 / 1048576
open(f"{d}/perftest-bidi.txt", "w").write(f"1 {4 * M} {mib}\n2 {4 * M} {mib}\n3 {4 * M} {mib / 2}\n")
open(f"{d}/perftest.txt", "w").write(f"1 {4 * M} {mib}\n2 {4 * M} {mib}\n3 {4 * M} {mib}\n")
# ib_write_lat: 20 us typical, 30 us in run 3; inf (a failed calibration) is left out
open(f"{d}/perftest-lat.txt", "w").write("1 20.0 15.0\n2 inf inf\n3 30.0 20.0\n")
open(f"{d}/perftest-lat-pkts.txt", "w").write("1 8000 2000\n2 8000 2000\n3 8000 2000\n")
open(f"{d}/lat-pkts.txt", "w").write("1 32000 4000\n2 32000 4000\n")
json.dump({"date": "2030-01-02 03:04 UTC", "commit": "abc1234", "machine": "a test machine",
           "command": "scripts/bench-verbs", "note": "host load average 1 before"}, open(f"{d}/run.json", "w"))
EOF2
copy_tree
if PYTHONPATH=$ROOT/scripts/lib python3 "$ROOT/scripts/lib/bench_verbs_tables.py" "$TMP/vrun" bw,lat,opts,mpi 2 "1 1 1" \
        "2 2 2" 99 > "$TMP/out" 2> "$TMP/err" &&
    python3 "$ROOT/scripts/lib/measured.py" record "$TMP/vrun/measured.json" bench-verbs.json --root "$TMP/root" 2>> "$TMP/err" &&
    "$TABLES" --root "$TMP/root" > /dev/null 2>> "$TMP/err" &&
    # all_reduce: 0.18 / 0.2 in round 1, 0.09 / 0.15 in round 2
    grep -q '^| 4 MiB | 0.135 \[0.090-0.180\] | 0.175 \[0.150-0.200\] | 0.75 \[0.60-0.90\] |' "$TMP/root/docs/verbs.md" &&
    grep -q '^| 4 MiB | 0.150 \[0.100-0.200\] | 0.175 \[0.150-0.200\] | 0.83 \[0.67-1.00\] |$' "$TMP/root/docs/verbs.md" &&
    grep -q 'all_gather busbw / -b per direction at 4-64 MiB: lowest median 0.83 (missed: target >= 0.9)' "$TMP/out" &&
    # latency: 60 / 20 in round 1 (run 2 is inf: left out), 60 / 30 in round 2
    grep -q '^| auto>rd | 60.0 \[60.0-60.0\] | 30.0 \[30.0-30.0\] | 40.0 \[40.0-40.0\] | 25.0 \[20.0-30.0\] | 2.50 \[2.00-3.00\] |' "$TMP/root/docs/verbs.md" &&
    grep -q '^| ib_write_lat -s 2: one ping-pong .* | 4.0 \[4.0-4.0\] | 50.0 \[40.0-60.0\] |$' "$TMP/root/docs/verbs.md" &&
    grep -q '^| 8 B all_reduce, --algo rd, 2 ranks, back to back (-I 0) | 8.0 \[8.0-8.0\] | 50.0 \[50.0-50.0\] |$' "$TMP/root/docs/verbs.md" &&
    grep -q '^| `--ib-ar` | on (--ar on) | off (--ar off) | 0.120 \[0.080-0.160\] | 0.090 \[0.060-0.120\] | 0.75 \[0.75-0.75\] | - |$' "$TMP/root/docs/verbs.md"; then
    pass "$name"
else
    fail "$name: $(tail -3 "$TMP/err")"; grep '^|' "$TMP/out" | head -30
fi
