#!/bin/bash
# The operator scripts: scripts/compare and scripts/nightly against the golden
# inputs of tests/golden/ (made by tests/golden/make_golden.py and
# make_week.py from known distributions with fixed seeds), the nightly's
# process handling with a stand-in launcher, the scripts' input hardening and
# safe writer, the templates, then one live nightly sweep when build/collbench
# exists. No case needs MPI except the live sweep.
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

# user_error NAME TEXT CMD...: exit 2, one line on stderr containing TEXT, no traceback
user_error() {
    local name=$1 text=$2; shift 2
    expect_rc 2 "$name" "$@" || return
    if grep -q Traceback "$TMP/err"; then fail "$name: a traceback"; return; fi
    if [ "$(wc -l < "$TMP/err")" != 1 ]; then fail "$name: not one line"; cat "$TMP/err"; return; fi
    if ! grep -qF -- "$text" "$TMP/err"; then fail "$name: message lacks '$text'"; cat "$TMP/err"; return; fi
    pass "$name"
}

# promtool_ok NAME FILE: promtool check metrics accepts FILE
promtool_ok() {
    if ! command -v promtool > /dev/null; then skip "$1: promtool not installed (scripts/install-deps)"; return; fi
    if [ ! -s "$2" ]; then fail "$1: $2 missing or empty"; return; fi
    if promtool check metrics < "$2" > "$TMP/promtool" 2>&1; then pass "$1"
    else fail "$1: promtool check metrics: $(head -3 "$TMP/promtool" | tr '\n' ' ')"; fi
}

# status_is FILE STATUS: the textfile's collbench_sweep_status is STATUS
status_is() {
    grep -qx "collbench_sweep_status{status=\"$2\"} 1" "$1" 2>/dev/null
}

# ---- compare: golden runs drawn from known distributions ----

out=$TMP/compare
if expect_rc 0 "compare golden runs" "$COMPARE" -o "$out" "$GOLD/compare-a.json" "$GOLD/compare-b.json"; then
    cp "$TMP/out" "$TMP/compare.stdout"
    if diff <(awk -F, 'NR > 1 {print $6 "," $NF}' "$out/verdicts.csv") <(tail -n +2 "$GOLD/compare-expected.csv") > "$TMP/diff"; then
        pass "compare verdicts.csv as expected (same, slower, faster, unclear, 20x slower, n/a)"
    else
        fail "compare verdicts.csv differs from compare-expected.csv"; cat "$TMP/diff"
    fi
    if diff <(awk '$1 == "all_reduce" {print $4 "," $NF}' "$TMP/compare.stdout") \
            <(tail -n +2 "$GOLD/compare-expected.csv") > "$TMP/diff"; then
        pass "compare table verdicts as expected"
    else
        fail "compare table verdicts differ"; cat "$TMP/diff"
    fi
    # the 20x case of issue 16 (4 MiB, 400 vs 8238 us, 20 noisy iterations)
    if awk '$1 == "all_reduce" && $4 == 4194304' "$TMP/compare.stdout" | grep -q ' slower$'; then
        pass "compare: a 20x difference is slower, not same"
    else
        fail "compare: the 20x difference"; grep 4194304 "$TMP/compare.stdout"
    fi
    summary=$(grep '^#   all_reduce float sum:' "$TMP/compare.stdout")
    if [[ $summary == *"B is "*"% slower at 1 KiB"* && $summary == *"x slower at 4 MiB"* &&
          $summary == *"faster at 64 KiB"* && $summary == *"same (within +-5%) at 8 B"* ]]; then
        pass "compare one-line summary per collective"
    else
        fail "compare summary: '$summary'"
    fi
    for metric in busbw p99; do
        stem=$out/${metric}_all_reduce_float_sum
        if is_png "$stem.png" && grep -q '<path' "$stem.svg" 2>/dev/null; then pass "compare $metric plot PNG and SVG"
        else fail "compare $metric plot: missing, not a PNG or an SVG without drawing"; fi
    done
    if grep -qF '"busbw_all_reduce_float_sum.svg"' "$out/report.html" && grep -q '<td>slower</td>' "$out/report.html"; then
        pass "compare HTML report references the plots and holds the table"
    else
        fail "compare HTML report lacks the plots or the table"
    fi
fi

if expect_rc 0 "compare two samples of one distribution" "$COMPARE" -o "$TMP/c-same" \
        "$GOLD/compare-same-1.json" "$GOLD/compare-same-2.json"; then
    verdicts=$(awk -F, 'NR > 1 {print $NF}' "$TMP/c-same/verdicts.csv" | sort | uniq -c | xargs)
    if [ "$verdicts" = "4 same" ]; then pass "compare two samples of one distribution: same at every size"
    else fail "compare two samples of one distribution: $verdicts"; fi
fi

# labels, folders as input
mkdir -p "$TMP/folder-a" "$TMP/folder-b"
cp "$GOLD/compare-same-1.json" "$TMP/folder-a/all_reduce.json"
cp "$GOLD/compare-same-2.json" "$TMP/folder-b/all_reduce.json"
if expect_rc 0 "compare folders with labels" "$COMPARE" -o "$TMP/c-lab" --label before,after \
        "$TMP/folder-a" "$TMP/folder-b"; then
    if grep -q '^# after vs before:' "$TMP/out" && grep -q '^ref,new' "$TMP/c-lab/verdicts.csv" &&
       grep -q '^before,after,all_reduce' "$TMP/c-lab/verdicts.csv"; then
        pass "compare folders with --label"
    else
        fail "compare folders with --label: labels not used"; head -5 "$TMP/out"
    fi
fi
if expect_rc 2 "compare --label count" "$COMPARE" -o "$TMP/c2" --label one "$GOLD/compare-a.json" "$GOLD/compare-b.json"; then
    if grep -q 'compare: error: --label takes 2 distinct' "$TMP/err"; then pass "compare --label count"
    else fail "compare --label count: no message"; cat "$TMP/err"; fi
fi

# not like for like: 2 ranks vs 4 ranks
user_error "compare refuses different rank counts" "ranks: A has 2, B has 4" \
    "$COMPARE" -o "$TMP/c-ranks" "$GOLD/compare-a.json" "$GOLD/compare-4ranks.json"
if expect_rc 0 "compare --anyway" "$COMPARE" -o "$TMP/c-any" --anyway "$GOLD/compare-a.json" "$GOLD/compare-4ranks.json"; then
    if head -1 "$TMP/c-any/table.txt" | grep -q '^# WARNING: not like for like: ranks' &&
       grep -q 'class="warning"' "$TMP/c-any/report.html" && grep -q 'WARNING' "$TMP/err"; then
        pass "compare --anyway warns in every output"
    else
        fail "compare --anyway: no warning"; head -3 "$TMP/c-any/table.txt"
    fi
fi
sed 's/"warmup": 1,/"warmup": 5,/' "$GOLD/compare-b.json" > "$TMP/warmup.json"
user_error "compare refuses different options" "option warmup: A 1, B 5" \
    "$COMPARE" -o "$TMP/c-opt" "$GOLD/compare-a.json" "$TMP/warmup.json"

if expect_rc 0 "compare --help" "$COMPARE" --help && grep -q 'order' "$TMP/out" && grep -q 'Binomial' "$TMP/out"; then
    pass "compare --help states the verdict rule"
fi

# ---- input hardening (issue 18): one line, exit 2, never a traceback ----

head -c 3000 "$GOLD/compare-a.json" > "$TMP/truncated.json"
user_error "compare truncated JSON" "$TMP/truncated.json is not valid JSON" \
    "$COMPARE" -o "$TMP/c2" "$TMP/truncated.json" "$GOLD/compare-b.json"
user_error "compare missing file" "cannot read $TMP/nope.json: No such file or directory" \
    "$COMPARE" -o "$TMP/c2" "$GOLD/compare-a.json" "$TMP/nope.json"
echo '{"name": "not a run"}' > "$TMP/other.json"
user_error "compare other JSON" "is not a collbench -J file" \
    "$COMPARE" -o "$TMP/c2" "$GOLD/compare-a.json" "$TMP/other.json"
sed '0,/"size": 8,/s//"size": "8",/' "$GOLD/compare-a.json" > "$TMP/badsize.json"
user_error "compare wrong field type" "results[0].size: expected a whole number >= 0, found string" \
    "$COMPARE" -o "$TMP/c2" "$TMP/badsize.json" "$GOLD/compare-b.json"
user_error "compare nothing in common" "nothing to compare" \
    "$COMPARE" -o "$TMP/c2" "$GOLD/compare-a.json" "$GOLD/nightly-ok/all_gather.json" --anyway
if expect_rc 2 "compare one run" "$COMPARE" "$GOLD/compare-a.json"; then pass "compare one run"; fi

python3 -c 'print("[" * 100000 + "]" * 100000)' > "$TMP/deep.json"
user_error "compare deeply nested JSON" "nests deeper than" \
    "$COMPARE" -o "$TMP/c2" "$TMP/deep.json" "$GOLD/compare-b.json"
python3 -c 'import sys; print("{\"collbench_version\": \"0\", \"results\": [], \"nranks\": " + "9" * 5000 + "}")' > "$TMP/digits.json"
user_error "compare 5000-digit number" "a number of 5000 digits" \
    "$COMPARE" -o "$TMP/c2" "$TMP/digits.json" "$GOLD/compare-b.json"
# plant_field NAME FIELD VALUE: compare-a.json with the first FIELD set to VALUE
plant_field() {
    sed "0,/\"$2\": [^,]*,/s//\"$2\": $3,/" "$GOLD/compare-a.json" > "$TMP/$1.json"
}
plant_field nan_busbw busbw_gbps NaN
user_error "compare NaN busbw" "NaN is not a number JSON allows" \
    "$COMPARE" -o "$TMP/c2" "$TMP/nan_busbw.json" "$GOLD/compare-b.json"
plant_field nan_p99 p99_us NaN
user_error "compare NaN p99" "NaN is not a number JSON allows" \
    "$COMPARE" -o "$TMP/c2" "$TMP/nan_p99.json" "$GOLD/compare-b.json"
plant_field inf_p99 p99_us 1e999
user_error "compare p99 beyond a double" "beyond the range of a double" \
    "$COMPARE" -o "$TMP/c2" "$TMP/inf_p99.json" "$GOLD/compare-b.json"
plant_field neg_nwrong nwrong -5
user_error "compare negative nwrong" "nwrong: expected a whole number >= 0 or null, found -5" \
    "$COMPARE" -o "$TMP/c2" "$TMP/neg_nwrong.json" "$GOLD/compare-b.json"
plant_field nan_nwrong nwrong NaN
user_error "compare NaN nwrong" "NaN is not a number JSON allows" \
    "$COMPARE" -o "$TMP/c2" "$TMP/nan_nwrong.json" "$GOLD/compare-b.json"
plant_field neg_sample iter_max_us '[-3'
user_error "compare negative sample" "iter_max_us[0]: expected a finite number >= 0, found -3" \
    "$COMPARE" -o "$TMP/c2" "$TMP/neg_sample.json" "$GOLD/compare-b.json"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["results"][0]["collective"] = "\x1b[2Jall_reduce"; print(json.dumps(d))' \
    "$GOLD/compare-a.json" > "$TMP/escape.json"
user_error "compare escape in a name" 'results[0].collective: '"'"'\x1b[2Jall_reduce'"'"' is not a name collbench writes' \
    "$COMPARE" -o "$TMP/c2" "$TMP/escape.json" "$GOLD/compare-b.json"
if grep -q $'\x1b' "$TMP/err"; then fail "compare escape in a name: the escape reached the terminal"; fi
printf '\xff\xfe{' > "$TMP/binary.json"
user_error "compare binary input" "is not UTF-8 text" \
    "$COMPARE" -o "$TMP/c2" "$TMP/binary.json" "$GOLD/compare-b.json"
mkdir -p "$TMP/bt"
cp "$TMP/nan_busbw.json" "$TMP/bt/all_reduce.ours.json"
user_error "bench_table.py NaN input" "NaN is not a number JSON allows" \
    /usr/bin/python3 "$ROOT/scripts/lib/bench_table.py" "$TMP/bt" all_reduce
sed -e '0,/"out_of_place"/s//"nothing_here"/' -e 's/"algo": "ring"/"algo_asked": "auto"/' \
    "$GOLD/nightly-ok/all_reduce.json" > "$TMP/bt/np2.all.r1.json"
user_error "algos_table.py malformed input" "lacks a field or has one of the wrong kind" \
    /usr/bin/python3 "$ROOT/scripts/lib/algos_table.py" "$TMP/bt" 2

# nwrong 5 and -5 must not cancel: -5 is refused (above); 5 and 0 sum to an alarm
sed '0,/"nwrong": 0,/s//"nwrong": 5,/' "$GOLD/nightly-ok/all_reduce.json" > "$TMP/wrong5.json"

# ---- the safe writer ----

mkdir -p "$TMP/c-link"
echo precious > "$TMP/precious"
ln -s "$TMP/precious" "$TMP/c-link/table.txt"
user_error "compare refuses a symlink target" "refusing to write $TMP/c-link/table.txt: it exists and is a symlink" \
    "$COMPARE" -o "$TMP/c-link" "$GOLD/compare-same-1.json" "$GOLD/compare-same-2.json"
if [ "$(cat "$TMP/precious")" = precious ] && [ -z "$(ls -A "$TMP/c-link" | grep -v '^table.txt$')" ]; then
    pass "compare: the symlink's target untouched, no temp file left"
else
    fail "compare: symlink target changed or files left: $(ls -A "$TMP/c-link")"
fi
mkdir -p "$TMP/c-fifo" && mkfifo "$TMP/c-fifo/verdicts.csv"
user_error "compare refuses a FIFO target" "it exists and is a FIFO" \
    timeout 20 "$COMPARE" -o "$TMP/c-fifo" "$GOLD/compare-same-1.json" "$GOLD/compare-same-2.json"
# a full disk (a 64 KiB tmpfs in a private mount namespace): non-zero, no temp file left
name="compare on a full disk"
if [ "$(id -u)" = 0 ] && unshare -m true 2> /dev/null; then
    mkdir -p "$TMP/full"
    unshare -m sh -c 'mount -t tmpfs -o size=64k none "$1" && "$2" -o "$1/out" "$3" "$4" > /dev/null 2> "$1.err";
                      echo $? > "$1.rc"; ls -A "$1/out" > "$1.left"' sh \
        "$TMP/full" "$COMPARE" "$GOLD/compare-same-1.json" "$GOLD/compare-same-2.json"
    if [ "$(cat "$TMP/full.rc")" = 2 ] && grep -q 'No space left on device' "$TMP/full.err" &&
       ! grep -q '\.tmp$' "$TMP/full.left" && ! grep -q Traceback "$TMP/full.err"; then
        pass "$name: exit 2, named, no temp file left"
    else
        fail "$name: exit $(cat "$TMP/full.rc"), left: $(cat "$TMP/full.left" | xargs)"; cat "$TMP/full.err"
    fi
else
    skip "$name: needs root and unshare -m"
fi

# ---- nightly: the golden nights (20 iterations: p99 not judged) ----

# config FILE HISTORY [EXTRA-JSON]: a config against the golden baseline
config() {
    cat > "$1" <<EOF
{"baseline": "$GOLD/nightly-baseline", "history_dir": "$2",
 "compare_last": 3, "textfile": "$2.prom"${3:+, $3}}
EOF
}
config "$TMP/nightly.json" "$TMP/history" '"persistence": {"nights": 1, "of_last": 1}'
PROM=$TMP/history.prom

if expect_rc 0 "nightly within the noise" "$NIGHTLY" -C "$TMP/nightly.json" \
        --from-json "$GOLD"/nightly-ok/*.json; then
    if grep -qE 'REGRESSION |nightly: suspect ' "$TMP/err"; then fail "nightly within the noise: names a regression"; cat "$TMP/err"
    else pass "nightly within the noise: exit 0"; fi
fi
promtool_ok "nightly textfile passes promtool check metrics (clean night)" "$PROM"
missing_g=""
for g in collbench_build_info collbench_busbw_bytes_per_second collbench_latency_p99_seconds \
         collbench_wrong_elements collbench_sweep_status; do
    grep -q "^# HELP $g " "$PROM" && grep -q "^# TYPE $g gauge" "$PROM" && grep -q "^${g}[{ ]" "$PROM" || missing_g="$missing_g $g"
done
if [ -z "$missing_g" ] && grep -qx 'collbench_build_info{version="0.1.0"} 1' "$PROM" && status_is "$PROM" ok; then
    pass "nightly textfile: base units, HELP/TYPE, build info, sweep status ok"
else
    fail "nightly textfile lacks:$missing_g (or build info / status)"; head -20 "$PROM"
fi
if ls -A "$TMP" | grep -q '^\.history\.prom\.'; then fail "nightly textfile: temporary file left"
else pass "nightly textfile written by rename"; fi

if expect_rc 1 "nightly planted regression" "$NIGHTLY" -C "$TMP/nightly.json" \
        --from-json "$GOLD"/nightly-regressed/*.json; then
    if grep -qF "REGRESSION all_reduce float sum size 524288: busbw: " "$TMP/err" &&
       grep -qF "REGRESSION all_reduce float sum size 8192: wrong_elements: 6 wrong elements" "$TMP/err" &&
       ! grep -qF "size 2048: p99" "$TMP/err" && grep -qF "p99 not judged: 20 per-iteration samples" "$TMP/err"; then
        pass "nightly planted regression named; p99 not judged at 20 iterations"
    else
        fail "nightly planted regression: not as expected"; cat "$TMP/err"
    fi
fi
promtool_ok "nightly textfile passes promtool check metrics (regressed night)" "$PROM"
if grep -qE '^collbench_regression_alarm\{.*collective="all_reduce".*size="524288",metric="busbw",reference="baseline"\} 1$' "$PROM" &&
   status_is "$PROM" regression; then
    pass "nightly textfile flags the regression"
else
    fail "nightly textfile flags the regression"
fi
night=$TMP/history/20240511T020000Z
if [ -f "$night/all_reduce.json" ] && [ -s "$night/regressions.txt" ] && is_png "$night/trend_busbw_all_reduce_float_sum.png" &&
   grep -q '"status": "regressed"' "$night/night.json" && grep -qF 'href="trend_p99_all_gather_float_sum.png"' "$night/index.html" &&
   grep -qF 'href="20240511T020000Z/trend_busbw_all_reduce_float_sum.png"' "$TMP/history/index.html"; then
    pass "nightly history, trend plots and index.html"
else
    fail "nightly history, trend plots and index.html"; ls -R "$TMP/history" | head -20
fi

user_error "nightly same night twice" "history already has night 20240510T020000Z" \
    "$NIGHTLY" -C "$TMP/nightly.json" --from-json "$GOLD"/nightly-ok/*.json
if status_is "$PROM" error; then pass "nightly: an input error still writes the textfile (status error)"
else fail "nightly: textfile after an input error"; grep sweep_status "$PROM"; fi
promtool_ok "nightly textfile passes promtool check metrics (input error)" "$PROM"
for bad in truncated deep digits nan_busbw nan_p99 neg_nwrong nan_nwrong; do
    cp "$TMP/$bad.json" "$TMP/all_reduce.json"
    user_error "nightly rejects $bad input" "$TMP/all_reduce.json" \
        "$NIGHTLY" -C "$TMP/nightly.json" --from-json "$TMP/all_reduce.json"
done
if ls -A "$TMP/history" | grep -q '^\.night-'; then fail "nightly: work folder left after an error"
else pass "nightly: no work folder left after an error"; fi
config "$TMP/wrong.json" "$TMP/history-wrong" '"persistence": {"nights": 3, "of_last": 3}'
cp "$TMP/wrong5.json" "$TMP/all_reduce.json"
if expect_rc 1 "nightly wrong elements alarm at once" "$NIGHTLY" -C "$TMP/wrong.json" --from-json "$TMP/all_reduce.json"; then
    if grep -qF "wrong_elements: 5 wrong elements" "$TMP/err"; then pass "nightly wrong elements alarm at once"
    else fail "nightly wrong elements: not named"; cat "$TMP/err"; fi
fi

echo '{"baseline": "x", "history_dir": "y", "treshold": 1}' > "$TMP/typo.json"
user_error "nightly config typo" "unknown key 'treshold'" "$NIGHTLY" -C "$TMP/typo.json" --from-json x
echo '{"history_dir": "y", "\u001b[2Jkey": 1}' > "$TMP/esckey.json"
user_error "nightly config key with an escape" "unknown key '\x1b[2Jkey'" "$NIGHTLY" -C "$TMP/esckey.json"
echo '{"baseline": "x"}' > "$TMP/nohist.json"
user_error "nightly config without history" "missing 'history_dir'" "$NIGHTLY" -C "$TMP/nohist.json"
echo "{\"history_dir\": \"$TMP/h-nan\", \"thresholds\": {\"busbw_min_ratio\": NaN}}" > "$TMP/nanconf.json"
user_error "nightly config NaN threshold" "NaN is not a number JSON allows" "$NIGHTLY" -C "$TMP/nanconf.json"
echo "{\"history_dir\": \"$TMP/h-p\", \"persistence\": {\"nights\": 4, \"of_last\": 3}}" > "$TMP/persconf.json"
user_error "nightly config persistence" "persistence.nights (4) cannot exceed" "$NIGHTLY" -C "$TMP/persconf.json"
config "$TMP/norun.json" "$TMP/history-norun"
user_error "nightly config cannot run" "'mpirun' is needed to run the sweep" "$NIGHTLY" -C "$TMP/norun.json"
if expect_rc 0 "nightly --help" "$NIGHTLY" --help && grep -q 'busbw_min_ratio' "$TMP/out" &&
   grep -q "at least 435 per-iteration samples" "$TMP/out"; then
    pass "nightly --help documents the config and the p99 rule"
fi

# ---- nightly: a simulated week (500 iterations a size) ----

python3 "$GOLD/make_week.py" "$TMP/week"
cat > "$TMP/week.json" <<EOF
{"history_dir": "$TMP/week-history", "textfile": "$TMP/week.prom", "keep_nights": 4,
 "persistence": {"nights": 2, "of_last": 3}}
EOF
codes="" prom_bad=""
for n in 1 2 3 4 5 6 7; do
    "$NIGHTLY" -C "$TMP/week.json" --from-json "$TMP/week/night$n"/*.json > "$TMP/week$n.out" 2> "$TMP/week$n.err"
    codes="$codes$?"
    promtool check metrics < "$TMP/week.prom" > /dev/null 2>&1 || prom_bad="$prom_bad $n"
    cp "$TMP/week.prom" "$TMP/week$n.prom"
done
if [ "$codes" = 0000011 ]; then pass "nightly week: exit 0 on nights 1-5, 1 on nights 6 and 7"
else fail "nightly week: exit codes $codes, expected 0000011"; fi
if grep -q '(bootstrap)' "$TMP/week1.err"; then pass "nightly week: the first night bootstraps the history"
else fail "nightly week: first night not a bootstrap"; tail -3 "$TMP/week1.err"; fi
if grep -q 'suspect all_gather float sum size 65536: busbw' "$TMP/week3.err" &&
   ! grep -q 'all_gather float sum size 65536' "$TMP"/week[4-7].err; then
    pass "nightly week: the one-night regression is a suspect, never an alarm"
else
    fail "nightly week: the one-night regression"; grep 65536 "$TMP"/week*.err
fi
if grep -q 'REGRESSION all_reduce float sum size 1048576: busbw: .*(2 of the last 3 nights)' "$TMP/week6.err" &&
   grep -q 'suspect all_reduce float sum size 1048576: busbw' "$TMP/week5.err" &&
   ! grep -q REGRESSION "$TMP/week5.err"; then
    pass "nightly week: the persistent regression alarms on its second night"
else
    fail "nightly week: the persistent regression"; grep 1048576 "$TMP"/week[56].err
fi
if grep -q 'REGRESSION all_gather float sum size 8: p99: ' "$TMP/week7.err"; then
    pass "nightly week: p99 judged with 500 iterations (alarm after two nights)"
else
    fail "nightly week: p99 with 500 iterations"; grep 'size 8:' "$TMP"/week[67].err
fi
recent4=$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["recent_nights"]))' \
    "$TMP/week-history/20240604T020000Z/night.json" 2>/dev/null)
recent7=$(python3 -c 'import json,sys; print(",".join(json.load(open(sys.argv[1]))["recent_nights"]))' \
    "$TMP/week-history/20240607T020000Z/night.json" 2>/dev/null)
if [ "$recent4" = 20240601T020000Z,20240602T020000Z ] && [ "$recent7" = 20240601T020000Z,20240602T020000Z,20240604T020000Z ]; then
    pass "nightly week: regressed nights never become the reference"
else
    fail "nightly week: references night 4: $recent4, night 7: $recent7"
fi
if [ ! -d "$TMP/week-history/20240603T020000Z" ] && [ -d "$TMP/week-history/20240601T020000Z" ] &&
   [ "$(ls -d "$TMP"/week-history/2* | wc -l)" = 6 ]; then
    pass "nightly week: retention removed the oldest night not in use as a reference"
else
    fail "nightly week: retention: $(ls "$TMP/week-history" | xargs)"
fi
if [ -z "$prom_bad" ]; then pass "nightly week: promtool check metrics passes on every night's textfile"
else fail "nightly week: promtool fails after nights$prom_bad"; fi
if grep -qE '^collbench_regression_alarm\{.*size="1048576",metric="busbw",reference="recent"\} 1$' "$TMP/week6.prom" &&
   ! grep -q '^collbench_regression_alarm{' "$TMP/week5.prom" && status_is "$TMP/week5.prom" suspect; then
    pass "nightly week: textfile alarms only on the persistent regression"
else
    fail "nightly week: textfile alarms"
fi
if expect_rc 0 "nightly --accept" "$NIGHTLY" -C "$TMP/week.json" --accept 20240607T020000Z &&
   grep -q '"status": "accepted"' "$TMP/week-history/20240607T020000Z/night.json"; then
    pass "nightly --accept makes a regressed night a reference"
fi

# ---- nightly: the launcher, signals, the lock, total failure ----

# a stand-in launcher: records its pid and two "ranks" (one in its own
# process group, as mpirun's ranks may be), then waits for them
cat > "$TMP/launcher" <<'EOF'
#!/bin/bash
pids=$PIDS_FILE
echo $$ >> "$pids"
sleep 300 & echo $! >> "$pids"
python3 -c 'import os, time, sys; os.setpgid(0, 0); open(sys.argv[1], "a").write(f"{os.getpid()}\n"); time.sleep(300)' "$pids" &
wait
EOF
chmod +x "$TMP/launcher"
cat > "$TMP/slow.json" <<EOF
{"baseline": "$GOLD/nightly-baseline", "history_dir": "$TMP/history-slow", "textfile": "$TMP/slow.prom",
 "mpirun": ["$TMP/launcher"], "collbench": "/bin/true", "collectives": ["all_reduce"],
 "sizes": {"min": "8", "max": "1K"}}
EOF
# wait_pids FILE COUNT: until FILE has COUNT lines (10 s at most)
wait_pids() {
    for _ in $(seq 100); do
        [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
alive() {   # any of the pids in FILE still running (zombies count as gone)
    local p
    for p in $(cat "$1"); do
        [ -e /proc/$p ] && ! grep -q '^State:.Z' /proc/$p/status 2>/dev/null && return 0
    done
    return 1
}

name="nightly kill -TERM mid-night"
export PIDS_FILE=$TMP/pids-term
"$NIGHTLY" -C "$TMP/slow.json" > "$TMP/term.out" 2> "$TMP/term.err" &
nightly_pid=$!
if wait_pids "$PIDS_FILE" 3; then
    # a second start while the first runs: refused by the lock
    PIDS_FILE=$TMP/pids-second "$NIGHTLY" -C "$TMP/slow.json" > "$TMP/second.out" 2> "$TMP/second.err"
    second_rc=$?
    if [ $second_rc = 4 ] && grep -q "another nightly (pid $nightly_pid) is running" "$TMP/second.err" &&
       [ ! -e "$TMP/pids-second" ]; then
        pass "nightly: a second concurrent start is refused by the lock (exit 4)"
    else
        fail "nightly: second concurrent start: exit $second_rc"; cat "$TMP/second.err"
    fi
    kill -TERM $nightly_pid
    timeout 20 tail --pid=$nightly_pid -f /dev/null
    wait $nightly_pid
    rc=$?
    sleep 0.2
    if [ $rc = 143 ] && ! alive "$PIDS_FILE"; then pass "$name: exit 143, launcher and ranks gone"
    else fail "$name: exit $rc, alive: $(for p in $(cat "$PIDS_FILE"); do [ -e /proc/$p ] && echo $p; done | xargs)"; cat "$TMP/term.err"; fi
    if [ -z "$(ls -A "$TMP/history-slow" | grep -v '^\.nightly\.lock$')" ]; then
        pass "$name: history consistent (no night, no work folder)"
    else
        fail "$name: history holds $(ls -A "$TMP/history-slow" | xargs)"
    fi
    if status_is "$TMP/slow.prom" interrupted; then pass "$name: textfile written (status interrupted)"
    else fail "$name: textfile status"; grep sweep_status "$TMP/slow.prom"; fi
    promtool_ok "$name: textfile passes promtool" "$TMP/slow.prom"
else
    fail "$name: the stand-in launcher never started"; cat "$TMP/term.err"; kill $nightly_pid
fi
for p in $(cat "$TMP"/pids-* 2>/dev/null); do kill -9 $p 2>/dev/null; done

# a launcher past its time limit: stopped with its ranks, the sweep failed
sed 's/"sizes"/"run_timeout_s": 2, "sizes"/' "$TMP/slow.json" > "$TMP/timeout.json"
export PIDS_FILE=$TMP/pids-timeout
if expect_rc 3 "nightly run_timeout_s" "$NIGHTLY" -C "$TMP/timeout.json"; then
    if ! alive "$PIDS_FILE" && grep -q 'no result within 2 s' "$TMP/err" && status_is "$TMP/slow.prom" failed; then
        pass "nightly run_timeout_s: launcher and ranks stopped, status failed"
    else
        fail "nightly run_timeout_s: strays or no reason"; cat "$TMP/err"
    fi
fi
for p in $(cat "$TMP"/pids-* 2>/dev/null); do kill -9 $p 2>/dev/null; done
unset PIDS_FILE

# a sweep whose collbench gives no result at all: exit 3, logs kept, textfile written
cat > "$TMP/failing.json" <<EOF
{"history_dir": "$TMP/history-failing", "textfile": "$TMP/failing.prom",
 "mpirun": ["env"], "collbench": "/bin/false", "collectives": ["all_reduce", "all_gather"],
 "sizes": {"min": "8", "max": "1K"}}
EOF
echo stale > "$TMP/failing.prom"
if expect_rc 3 "nightly total failure" "$NIGHTLY" -C "$TMP/failing.json"; then
    if ls -d "$TMP"/history-failing/failed-* > /dev/null 2>&1 && grep -q 'all_reduce: collbench exited 1' "$TMP/err" &&
       status_is "$TMP/failing.prom" failed && grep -qx 'collbench_failed_collectives 2' "$TMP/failing.prom"; then
        pass "nightly total failure: exit 3, logs kept, textfile rewritten (status failed)"
    else
        fail "nightly total failure: no failed- folder, reason or textfile"; cat "$TMP/err"; cat "$TMP/failing.prom"
    fi
fi
promtool_ok "nightly total failure: textfile passes promtool" "$TMP/failing.prom"
ln -sf "$TMP/precious" "$TMP/failing.prom"
expect_rc 2 "nightly textfile symlink" "$NIGHTLY" -C "$TMP/failing.json"
if grep -q "refusing to write $TMP/failing.prom: it exists and is a symlink" "$TMP/err" &&
   [ "$(cat "$TMP/precious")" = precious ]; then
    pass "nightly refuses a symlink textfile, its target untouched"
else
    fail "nightly textfile symlink"; cat "$TMP/err"
fi

# ---- nightly: the pairs step, with a stand-in collbench ----

# A logging launcher (its argv to $LAUNCH_LOG, then runs it) and a stand-in
# collbench: COLLECTIVE copies the golden nightly-ok/COLLECTIVE.json to its -J
# path; pairs copies $STUB_PAIRS there (when set) and exits $STUB_PAIRS_RC.
# tests/golden/pairs-clean.json and pairs-faulty.json follow
# src/tools/pairs_report.c's layout: 4 hosts, ring neighbours; the faulty one
# has a lossy link node2 <-> node3 and a carrier flap of node4's eth0.
cat > "$TMP/log-launcher" <<'EOF'
#!/bin/bash
echo "$*" >> "$LAUNCH_LOG"
exec "$@"
EOF
cat > "$TMP/stub-collbench" <<EOF
#!/bin/bash
what=\$1 out=
[ "\$what" = --version ] && { echo "collbench stub"; exit 0; }
while [ \$# -gt 0 ]; do [ "\$1" = -J ] && out=\$2; shift; done
if [ "\$what" = pairs ]; then
    [ -n "\$STUB_PAIRS" ] && cp "\$STUB_PAIRS" "\$out"
    exit \${STUB_PAIRS_RC:-0}
fi
cp "$GOLD/nightly-ok/\$what.json" "\$out"
EOF
chmod +x "$TMP/log-launcher" "$TMP/stub-collbench"
# pairs_config NAME [PAIRS-SETTINGS]: history $TMP/history-NAME, textfile $TMP/NAME.prom
pairs_config() {
    cat > "$TMP/$1.json" <<EOF
{"baseline": "$GOLD/nightly-baseline", "history_dir": "$TMP/history-$1", "textfile": "$TMP/$1.prom",
 "persistence": {"nights": 1, "of_last": 1}, "mpirun": ["$TMP/log-launcher"],
 "collbench": "$TMP/stub-collbench", "collectives": ["all_reduce", "all_gather"],
 "sizes": {"min": "8", "max": "1K"}${2:+, \"pairs\": $2}}
EOF
}
# flagged FILE: the flag samples that are 1, one a line
flagged() { grep -E '^collbench_pairs_(link|host)_flagged\{.*\} 1$' "$1"; }
pairs_status_is() { grep -qx "collbench_pairs_status{status=\"$2\"} 1" "$1" 2>/dev/null; }

name="nightly pairs, clean"
pairs_config pclean
export LAUNCH_LOG=$TMP/pclean.launches
if STUB_PAIRS=$GOLD/pairs-clean.json expect_rc 0 "$name" "$NIGHTLY" -C "$TMP/pclean.json"; then
    night=$(ls -d "$TMP"/history-pclean/2* 2>/dev/null | head -1)
    first=$(head -1 "$LAUNCH_LOG")
    if [[ $first =~ ^$TMP/stub-collbench\ pairs\ --quick\ -J\ $TMP/history-pclean/\.night-[^/]+/pairs\.json$ ]] &&
       [ "$(wc -l < "$LAUNCH_LOG")" = 3 ]; then
        pass "$name: pairs --quick under the sweep's launcher, before the collectives"
    else
        fail "$name: launches: $(cat "$LAUNCH_LOG")"
    fi
    if [ -f "$night/pairs.json" ] && pairs_status_is "$TMP/pclean.prom" ok && status_is "$TMP/pclean.prom" ok &&
       grep -qx 'collbench_pairs_link_bandwidth_bytes_per_second{a="node2",b="node3"} 2400000000.0' "$TMP/pclean.prom" &&
       grep -qx 'collbench_pairs_link_latency_seconds{a="node1",b="node4"} 1.25e-05' "$TMP/pclean.prom" &&
       grep -qx 'collbench_pairs_host_flagged{host="node4",kind="flap"} 0' "$TMP/pclean.prom" &&
       grep -qx 'collbench_pairs_named 0' "$TMP/pclean.prom" && ! flagged "$TMP/pclean.prom" &&
       grep -q 'pairs named nothing' "$TMP/err" && ! grep -q PAIRS "$TMP/err" &&
       is_png "$night/trend_pairs_link_bandwidth.png" && grep -q 'trend_pairs_link_bandwidth.png' "$night/index.html" &&
       python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["pairs"]
sys.exit(p["status"] != "ok" or len(p["links"]) != 4 or p["links"][0]["bw_bytes_per_second"] != 2.4e9)' "$night/night.json"; then
        pass "$name: pairs.json kept, per-link and per-host metrics, links in night.json and their plot, nothing named"
    else
        fail "$name: metrics or night"; grep pairs "$TMP/pclean.prom" | head; tail -3 "$TMP/err"
    fi
fi
promtool_ok "$name: textfile passes promtool" "$TMP/pclean.prom"

name="nightly pairs names a lossy link and a flapping host"
pairs_config pfault
export LAUNCH_LOG=$TMP/pfault.launches
if STUB_PAIRS=$GOLD/pairs-faulty.json STUB_PAIRS_RC=1 expect_rc 1 "$name" "$NIGHTLY" -C "$TMP/pfault.json"; then
    night=$(ls -d "$TMP"/history-pfault/2* 2>/dev/null | head -1)
    want=$'collbench_pairs_link_flagged{a="node2",b="node3",kind="lossy"} 1\ncollbench_pairs_host_flagged{host="node4",kind="flap"} 1'
    if [ "$(flagged "$TMP/pfault.prom")" = "$want" ] && status_is "$TMP/pfault.prom" fault &&
       pairs_status_is "$TMP/pfault.prom" named && grep -qx 'collbench_pairs_named 2' "$TMP/pfault.prom"; then
        pass "$name: exactly those flagged in the textfile (status fault)"
    else
        fail "$name: textfile"; flagged "$TMP/pfault.prom"; grep status "$TMP/pfault.prom"
    fi
    if grep -qx 'nightly: PAIRS FAULT link node2 <-> node3: lossy (2.10% of TCP segments retransmitted)' "$TMP/err" &&
       grep -qx 'nightly: PAIRS FAULT host node4: flap of eth0: carrier_changes 2 -> 6 in pass 2' "$TMP/err" &&
       [ "$(grep -c 'PAIRS FAULT' "$TMP/err")" = 2 ] && [ "$(grep -c '^PAIRS FAULT' "$night/regressions.txt")" = 2 ] &&
       grep -q 'PAIRS FAULT link node2' "$night/index.html" &&
       grep -q '"status": "fault"' "$night/night.json"; then
        pass "$name: named on stderr, in regressions.txt and index.html; the night is a fault, no reference"
    else
        fail "$name: report"; grep -i pairs "$TMP/err"; cat "$night/regressions.txt"
    fi
fi
promtool_ok "$name: textfile passes promtool" "$TMP/pfault.prom"
"$ROOT/scripts/templates/slurm-healthcheck" nightly "$TMP/pfault.prom" > "$TMP/hc.out" 2>&1; rc=$?
if [ $rc = 1 ] && grep -qx 'collbench nightly: fault (2 hosts and links named by pairs)' "$TMP/hc.out"; then pass "slurm-healthcheck nightly: exit 1 on a pairs fault"
else fail "slurm-healthcheck nightly on a pairs fault: exit $rc"; cat "$TMP/hc.out"; fi

name="nightly pairs fails without results"
pairs_config pfail
export LAUNCH_LOG=$TMP/pfail.launches
echo stale > "$TMP/pfail.prom"
if STUB_PAIRS= STUB_PAIRS_RC=1 expect_rc 3 "$name" "$NIGHTLY" -C "$TMP/pfail.json"; then
    if pairs_status_is "$TMP/pfail.prom" failed && status_is "$TMP/pfail.prom" partial &&
       grep -q '^collbench_busbw_bytes_per_second{' "$TMP/pfail.prom" &&
       grep -q 'PAIRS FAILED collbench pairs exited 1 without results' "$TMP/err" &&
       ls -d "$TMP"/history-pfail/2* > /dev/null 2>&1; then
        pass "$name: exit 3, night recorded, status partial, pairs status failed"
    else
        fail "$name: textfile or message"; grep status "$TMP/pfail.prom"; tail -5 "$TMP/err"
    fi
fi
promtool_ok "$name: textfile passes promtool" "$TMP/pfail.prom"

name="nightly pairs gives an unreadable file"
pairs_config pbad
head -c 300 "$GOLD/pairs-faulty.json" > "$TMP/pairs-truncated.json"
if STUB_PAIRS=$TMP/pairs-truncated.json STUB_PAIRS_RC=1 expect_rc 3 "$name" "$NIGHTLY" -C "$TMP/pbad.json"; then
    if pairs_status_is "$TMP/pbad.prom" failed && grep -q 'PAIRS FAILED unusable results: pairs results .* is not valid JSON' "$TMP/err" &&
       ! grep -q Traceback "$TMP/err"; then
        pass "$name: exit 3, pairs status failed, the reason named"
    else
        fail "$name"; tail -5 "$TMP/err"
    fi
fi

name="nightly pairs off"
pairs_config poff '{"enabled": false}'
export LAUNCH_LOG=$TMP/poff.launches
if STUB_PAIRS=$GOLD/pairs-faulty.json expect_rc 0 "$name" "$NIGHTLY" -C "$TMP/poff.json"; then
    if pairs_status_is "$TMP/poff.prom" skipped && ! grep -q ' pairs ' "$LAUNCH_LOG" &&
       grep -q '^# TYPE collbench_pairs_link_bandwidth_bytes_per_second gauge' "$TMP/poff.prom"; then
        pass "$name: not run, status skipped, families still declared"
    else
        fail "$name"; grep pairs_status "$TMP/poff.prom"; cat "$LAUNCH_LOG"
    fi
fi
unset LAUNCH_LOG
pairs_config ptypo '{"timout_s": 5}'
user_error "nightly pairs setting typo" "unknown pairs setting 'timout_s'" "$NIGHTLY" -C "$TMP/ptypo.json"
pairs_config pcoll '{}'
sed -i 's/"all_gather"/"pairs"/' "$TMP/pcoll.json"
user_error "nightly refuses pairs as a collective" "'pairs' is not a collective" "$NIGHTLY" -C "$TMP/pcoll.json"

# ---- templates: what docs/operators.md ships ----

T=$ROOT/scripts/templates
if command -v systemd-analyze > /dev/null && [ -f "$T/collbench-nightly.service" ]; then
    if systemd-analyze verify "$T/collbench-nightly.service" "$T/collbench-nightly.timer" > "$TMP/sa" 2>&1 ||
       ! grep -vE 'Command .* is not executable|No such file|Failed to|not found' "$TMP/sa" | grep -q .; then
        pass "systemd templates parse"
    else
        fail "systemd templates: $(head -3 "$TMP/sa" | xargs)"
    fi
else
    skip "systemd templates: systemd-analyze or the template missing"
fi
for f in collbench-nightly.sbatch collbench-validate.sbatch; do
    if [ -f "$T/$f" ] && bash -n "$T/$f"; then pass "template $f parses"; else fail "template $f"; fi
done
# the health-check hook with a stand-in validate-rack that fails one host
cat > "$TMP/fake-validate" <<'EOF'
#!/bin/bash
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
cat > "$out/report.json" <<'JSON'
{"status": "FAIL", "hosts": [{"rank": 0, "host": "node1(10.0.0.1)", "status": "PASS", "reason": "checked"},
 {"rank": 1, "host": "node2(10.0.0.2)", "status": "FAIL", "reason": "slow host: 3 of 3 pairs slow"}]}
JSON
exit 1
EOF
chmod +x "$TMP/fake-validate"
COLLBENCH_VALIDATE="$TMP/fake-validate" COLLBENCH_HC_DRY_RUN=1 "$T/slurm-healthcheck" validate --profile x \
    > "$TMP/hc.out" 2> "$TMP/hc.err"
rc=$?
if [ $rc = 1 ] && grep -qx 'would run: scontrol update NodeName=node2 State=DRAIN Reason="collbench: slow host: 3 of 3 pairs slow"' "$TMP/hc.out" &&
   ! grep -q node1 "$TMP/hc.out"; then
    pass "slurm-healthcheck validate: exit 1, drains the failed host with its reason"
else
    fail "slurm-healthcheck validate: exit $rc"; cat "$TMP/hc.out" "$TMP/hc.err"
fi
"$T/slurm-healthcheck" nightly "$TMP/week6.prom" > "$TMP/hc.out" 2>&1; rc6=$?
"$T/slurm-healthcheck" nightly "$TMP/week5.prom" > "$TMP/hc5.out" 2>&1; rc5=$?
if [ $rc6 = 1 ] && grep -qx 'collbench nightly: regression (2 alarms)' "$TMP/hc.out" && [ $rc5 = 0 ]; then
    pass "slurm-healthcheck nightly: exit 1 with the reason on a regression, 0 on a suspect"
else
    fail "slurm-healthcheck nightly: exit $rc6/$rc5"; cat "$TMP/hc.out" "$TMP/hc5.out"
fi

# ---- a live sweep with the real binary ----
name="nightly live sweep"
if [ ! -x "$CB" ]; then
    skip "$name: $CB not built"
else
    cat > "$TMP/live.json" <<EOF
{"history_dir": "$TMP/history-live",
 "textfile": "$TMP/live.prom", "mpirun": ["timeout", "120", "mpirun", "--oversubscribe", "-np", "2"],
 "collbench": "$CB", "collectives": ["all_reduce", "all_gather"],
 "sizes": {"min": "8", "max": "32K", "factor": 8}, "collbench_args": ["-n", "5", "-w", "1"],
 "pairs": {"args": ["-b", "64K", "-n", "5", "--lat-iters", "20", "--max-spread", "1000"]}}
EOF
    "$NIGHTLY" -C "$TMP/live.json" > "$TMP/out" 2> "$TMP/err"
    rc=$?
    live=$(ls -d "$TMP"/history-live/2* 2>/dev/null | head -1)
    if [ $rc = 0 ] && [ -f "$live/all_reduce.json" ] && [ -f "$live/all_gather.json" ] &&
       grep -q '^collbench_busbw_bytes_per_second{' "$TMP/live.prom" && status_is "$TMP/live.prom" bootstrap &&
       [ -f "$live/pairs.json" ] && grep -qx 'collbench_pairs_status{status="ok"} 1' "$TMP/live.prom" &&
       grep -q '^collbench_pairs_link_bandwidth_bytes_per_second{a="[^"]* (rank 0)",b="[^"]* (rank 1)"} ' "$TMP/live.prom"; then
        pass "$name (first night: bootstrap; pairs ran, its link exported)"
    else
        fail "$name: exit $rc"; tail -5 "$TMP/err"
    fi
    promtool_ok "$name: textfile passes promtool" "$TMP/live.prom"
fi

# kill -TERM mid-night with the real launcher: mpirun and every rank go
name="nightly kill -TERM with mpirun"
if [ ! -x "$CB" ]; then
    skip "$name: $CB not built"
else
    cat > "$TMP/livekill.json" <<EOF
{"history_dir": "$TMP/history-livekill", "textfile": "$TMP/livekill.prom",
 "mpirun": ["mpirun", "--oversubscribe", "-np", "2"], "collbench": "$CB",
 "collectives": ["all_reduce"], "sizes": {"min": "8", "max": "8"},
 "collbench_args": ["-n", "100000000", "-w", "1", "-T", "600"], "pairs": {"enabled": false}}
EOF
    "$NIGHTLY" -C "$TMP/livekill.json" > "$TMP/livekill.out" 2> "$TMP/livekill.err" &
    nightly_pid=$!
    ranks=0
    for _ in $(seq 300); do   # until both ranks run (30 s at most)
        ranks=$(pgrep -c -f -- "$TMP/history-livekill/.night-")
        [ "${ranks:-0}" -ge 3 ] && break   # mpirun and 2 ranks
        sleep 0.1
    done
    kill -TERM $nightly_pid
    wait $nightly_pid
    rc=$?
    left=$(pgrep -f -- "$TMP/history-livekill/.night-" | xargs)
    if [ "${ranks:-0}" -ge 3 ] && [ $rc = 143 ] && [ -z "$left" ] && status_is "$TMP/livekill.prom" interrupted &&
       [ -z "$(ls -A "$TMP/history-livekill" | grep -v '^\.nightly\.lock$')" ]; then
        pass "$name: mpirun and ranks gone, exit 143, history consistent"
    else
        fail "$name: $ranks processes seen, exit $rc, left: ${left:-none}, history: $(ls -A "$TMP/history-livekill" | xargs)"
        tail -3 "$TMP/livekill.err"
    fi
    if [ -n "$left" ]; then kill -9 $left 2> /dev/null; fi
fi
