#!/bin/bash
# The operator scripts: scripts/compare and scripts/nightly against the golden
# inputs of tests/golden/ (made by tests/golden/make_golden.py: each size
# planted to give a known verdict), then one live nightly sweep when
# build/collbench exists. No case needs MPI except the live sweep.
source "$(dirname "$0")/../lib.sh"

GOLD=$ROOT/tests/golden
COMPARE=$ROOT/scripts/compare
NIGHTLY=$ROOT/scripts/nightly
PNG_MIN_BYTES=5120

# is_png FILE: the PNG signature and more than PNG_MIN_BYTES bytes
is_png() {
    [ "$(head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
        [ "$(stat -c %s "$1")" -gt $PNG_MIN_BYTES ]
}

# user_error NAME TEXT CMD...: exit 2, one line on stderr containing TEXT
user_error() {
    local name=$1 text=$2; shift 2
    expect_rc 2 "$name" "$@" || return
    if [ "$(wc -l < "$TMP/err")" != 1 ]; then fail "$name: not one line"; cat "$TMP/err"; return; fi
    if ! grep -qF -- "$text" "$TMP/err"; then fail "$name: message lacks '$text'"; cat "$TMP/err"; return; fi
    if grep -q Traceback "$TMP/err"; then fail "$name: a traceback"; return; fi
    pass "$name"
}

# ---- compare ----

out=$TMP/compare
if expect_rc 0 "compare golden runs" "$COMPARE" -o "$out" "$GOLD/compare-a.json" "$GOLD/compare-b.json"; then
    cp "$TMP/out" "$TMP/compare.stdout"
    if diff <(cut -d, -f3-6,13-15 "$out/verdicts.csv") "$GOLD/compare-expected.csv" > "$TMP/diff"; then
        pass "compare verdicts.csv as expected"
    else
        fail "compare verdicts.csv differs from compare-expected.csv"; cat "$TMP/diff"
    fi
    # the printed table: size and verdict of every row
    if diff <(awk '$1 == "all_reduce" {print $4 "," $NF}' "$TMP/compare.stdout") \
            <(awk -F, 'NR > 1 {print $4 "," $7}' "$GOLD/compare-expected.csv") > "$TMP/diff"; then
        pass "compare table verdicts as expected"
    else
        fail "compare table verdicts differ"; cat "$TMP/diff"
    fi
    for metric in busbw p99; do
        stem=$out/${metric}_all_reduce_float_sum
        if is_png "$stem.png"; then pass "compare $metric plot PNG"
        else fail "compare $metric plot PNG: missing, not a PNG or under $PNG_MIN_BYTES bytes"; fi
        if grep -q '<svg' "$stem.svg" 2>/dev/null && grep -q '<path' "$stem.svg"; then
            pass "compare $metric plot SVG"
        else
            fail "compare $metric plot SVG: missing or without drawing"
        fi
    done
    missing=
    for f in busbw_all_reduce_float_sum.svg busbw_all_reduce_float_sum.png \
             p99_all_reduce_float_sum.svg p99_all_reduce_float_sum.png; do
        grep -qF "\"$f\"" "$out/report.html" || missing="$missing $f"
    done
    if [ -z "$missing" ] && grep -q '<td>mixed</td>' "$out/report.html"; then
        pass "compare HTML report references the plots and holds the table"
    else
        fail "compare HTML report lacks:${missing:- the table}"
    fi
fi

if expect_rc 0 "compare --help" "$COMPARE" --help && grep -q 'MAD' "$TMP/out"; then
    pass "compare --help states the verdict rule"
fi
head -c 3000 "$GOLD/compare-a.json" > "$TMP/truncated.json"
user_error "compare truncated JSON" "$TMP/truncated.json is not valid JSON" \
    "$COMPARE" -o "$TMP/c2" "$TMP/truncated.json" "$GOLD/compare-b.json"
user_error "compare missing file" "cannot read $TMP/nope.json: No such file or directory" \
    "$COMPARE" -o "$TMP/c2" "$GOLD/compare-a.json" "$TMP/nope.json"
echo '{"name": "not a run"}' > "$TMP/other.json"
user_error "compare other JSON" "is not a collbench -J file" \
    "$COMPARE" -o "$TMP/c2" "$GOLD/compare-a.json" "$TMP/other.json"
sed '0,/"size": 8,/s//"size": "8",/' "$GOLD/compare-a.json" > "$TMP/badsize.json"
user_error "compare wrong field type" "results[0].size: expected integer, found string" \
    "$COMPARE" -o "$TMP/c2" "$TMP/badsize.json" "$GOLD/compare-b.json"
user_error "compare nothing in common" "nothing to compare" \
    "$COMPARE" -o "$TMP/c2" "$GOLD/compare-a.json" "$GOLD/nightly-ok/all_gather.json"
if expect_rc 2 "compare one run" "$COMPARE" "$GOLD/compare-a.json"; then pass "compare one run"; fi

# ---- nightly ----

# config FILE [THRESHOLDS-JSON]: a config against the golden baseline, history in $TMP
config() {
    cat > "$1" <<EOF
{"baseline": "$GOLD/nightly-baseline", "history_dir": "$TMP/history",
 "compare_last": 3, "textfile": "$TMP/collbench.prom", "thresholds": ${2:-{\}}}
EOF
}
config "$TMP/nightly.json"
PROM=$TMP/collbench.prom

if expect_rc 0 "nightly within the noise" "$NIGHTLY" -C "$TMP/nightly.json" \
        --from-json "$GOLD"/nightly-ok/*.json; then
    if grep -q REGRESSION "$TMP/err"; then fail "nightly within the noise: names a regression"
    else pass "nightly within the noise: exit 0"; fi
fi

# every line a comment or `name{labels} value`, and the gauges there
prom_line='^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? [-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|NaN|Inf)$'
bad=$(grep -cvE "^# (HELP|TYPE) |$prom_line" "$PROM" 2>/dev/null)
gauges=0
for g in collbench_busbw_gbps collbench_p99_us collbench_wrong_elements collbench_regression; do
    grep -q "^$g{" "$PROM" 2>/dev/null && gauges=$((gauges + 1))
done
if [ -s "$PROM" ] && [ "$bad" = 0 ] && [ $gauges = 4 ]; then
    pass "nightly textfile parses as Prometheus exposition format"
else
    fail "nightly textfile: $bad bad lines, $gauges of 4 gauges"; grep -vE "^# |$prom_line" "$PROM" | head -3
fi
if ls "$TMP"/collbench.prom.* > /dev/null 2>&1; then fail "nightly textfile: temporary file left"
else pass "nightly textfile written by rename"; fi

if expect_rc 1 "nightly planted regression" "$NIGHTLY" -C "$TMP/nightly.json" \
        --from-json "$GOLD"/nightly-regressed/*.json; then
    missing=
    for want in "all_reduce float sum size 524288: busbw: " "all_gather float sum size 2048: p99: " \
                "all_reduce float sum size 8192: wrong_elements: " "x recent's"; do
        grep -qF "REGRESSION $want" "$TMP/err" || grep -qF "$want" "$TMP/err" || missing="$missing '$want'"
    done
    if [ -z "$missing" ]; then pass "nightly planted regression: exit 1, named"
    else fail "nightly planted regression: not named:$missing"; cat "$TMP/err"; fi
fi
if grep -qE '^collbench_regression\{.*collective="all_reduce".*size="524288",metric="busbw",reference="baseline"\} 1$' "$PROM"; then
    pass "nightly textfile flags the regression"
else
    fail "nightly textfile flags the regression"
fi

night=$TMP/history/20240511T020000Z
if [ -d "$TMP/history/20240510T020000Z" ] && [ -f "$night/all_reduce.json" ] &&
   [ -s "$night/regressions.txt" ] && is_png "$night/trend_busbw_all_reduce_float_sum.png" &&
   is_png "$night/trend_p99_all_gather_float_sum.png"; then
    pass "nightly history and trend plots"
else
    fail "nightly history and trend plots"; ls -R "$TMP/history" | head -20
fi

user_error "nightly same night twice" "history already has night 20240510T020000Z" \
    "$NIGHTLY" -C "$TMP/nightly.json" --from-json "$GOLD"/nightly-ok/*.json
user_error "nightly truncated JSON" "$TMP/truncated.json is not valid JSON" \
    "$NIGHTLY" -C "$TMP/nightly.json" --from-json "$TMP/truncated.json"
if ls -a "$TMP/history" | grep -q '^\.night-'; then fail "nightly: work folder left after an error"
else pass "nightly: no work folder left after an error"; fi

# the noise gate is what keeps all_reduce 32768 (0.85 x busbw, wide noise) from regressing
config "$TMP/nogate.json" '{"beyond_noise": false}'
sed -i "s|$TMP/history|$TMP/history-nogate|" "$TMP/nogate.json"
if expect_rc 1 "nightly without the noise gate" "$NIGHTLY" -C "$TMP/nogate.json" \
        --from-json "$GOLD"/nightly-ok/*.json; then
    if grep -qF "all_reduce float sum size 32768: busbw: " "$TMP/err"; then
        pass "nightly without the noise gate flags the noisy size"
    else
        fail "nightly without the noise gate: 32768 not named"; cat "$TMP/err"
    fi
fi

echo '{"baseline": "x", "history_dir": "y", "treshold": 1}' > "$TMP/typo.json"
user_error "nightly config typo" "unknown key 'treshold'" "$NIGHTLY" -C "$TMP/typo.json" --from-json x
echo '{"history_dir": "y"}' > "$TMP/nobase.json"
user_error "nightly config without baseline" "missing 'baseline'" "$NIGHTLY" -C "$TMP/nobase.json"
config "$TMP/norun.json"
user_error "nightly config cannot run" "'mpirun' is needed to run the sweep" "$NIGHTLY" -C "$TMP/norun.json"
if expect_rc 0 "nightly --help" "$NIGHTLY" --help && grep -q 'busbw_min_ratio' "$TMP/out"; then
    pass "nightly --help documents the config"
fi

# a sweep whose collbench gives no result: exit 3, logs kept
cat > "$TMP/failing.json" <<EOF
{"baseline": "$GOLD/nightly-baseline", "history_dir": "$TMP/history-failing",
 "mpirun": ["env"], "collbench": "/bin/false", "collectives": ["all_reduce"],
 "sizes": {"min": "8", "max": "1K"}}
EOF
if expect_rc 3 "nightly sweep without results" "$NIGHTLY" -C "$TMP/failing.json"; then
    if ls -d "$TMP"/history-failing/failed-* > /dev/null 2>&1 && grep -q 'all_reduce: collbench exited 1' "$TMP/err"; then
        pass "nightly sweep without results: exit 3, logs kept"
    else
        fail "nightly sweep without results: no failed- folder or no reason"; cat "$TMP/err"
    fi
fi

# ---- a live sweep with the real binary ----
name="nightly live sweep"
if [ ! -x "$CB" ]; then
    skip "$name: $CB not built"
else
    cat > "$TMP/live.json" <<EOF
{"baseline": "$ROOT/results/baselines/example", "history_dir": "$TMP/history-live",
 "textfile": "$TMP/live.prom", "mpirun": ["timeout", "120", "mpirun", "--oversubscribe", "-np", "2"],
 "collbench": "$CB", "collectives": ["all_reduce", "all_gather"],
 "sizes": {"min": "8", "max": "32K", "factor": 8}, "collbench_args": ["-n", "5", "-w", "1"]}
EOF
    "$NIGHTLY" -C "$TMP/live.json" > "$TMP/out" 2> "$TMP/err"
    rc=$?
    live=$(ls -d "$TMP"/history-live/2* 2>/dev/null | head -1)
    if { [ $rc = 0 ] || [ $rc = 1 ]; } && [ -f "$live/all_reduce.json" ] &&
       [ -f "$live/all_gather.json" ] && grep -q '^collbench_busbw_gbps{' "$TMP/live.prom"; then
        pass "$name (exit $rc: $(grep -c REGRESSION "$TMP/err") regressions on this machine's noise)"
    else
        fail "$name: exit $rc"; tail -5 "$TMP/err"
    fi
fi
