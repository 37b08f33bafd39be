#!/bin/bash
# The parsers under libFuzzer, ASan and UBSan (tests/fuzz/fuzz_*.c): the
# benchmark's command line, the size parser and sweep, `collbench tune`'s
# file, the os_index bound of topology files and the verbs connection handle
# and reply a peer sends. Each runs from its seed
# corpus (tests/fuzz/corpus/NAME) for FUZZ_SECONDS (default 20, under two
# minutes in all); a crash or a broken property fails the case and leaves
# the input in the output. Needs clang (scripts/install-deps installs it).
source "$(dirname "$0")/../lib.sh"
SECONDS_EACH=${FUZZ_SECONDS:-20}
HARNESSES="options sizes tune topo_xml handle"

# The scripts' result reader (compare, nightly, validate-rack read it): 3000
# inputs mutated from the golden runs with a fixed seed, each loaded or refused
# with a one-line error, never a traceback (tests/fuzz/fuzz_results_json.py).
name="fuzz the scripts' JSON result reader (3000 mutated runs)"
mkdir -p "$TMP/pyfuzz"
if /usr/bin/python3 "$ROOT/tests/fuzz/fuzz_results_json.py" "$TMP/pyfuzz" 3000 \
       "$ROOT/tests/golden/compare-a.json" "$ROOT/tests/golden/compare-b.json" > "$TMP/pyfuzz.out" 2>&1; then
    pass "$name"
else
    fail "$name"; tail -20 "$TMP/pyfuzz.out"
fi

if ! command -v clang > /dev/null; then
    for h in $HARNESSES; do skip "fuzz $h: clang is not installed (scripts/install-deps installs it)"; done
    exit 0
fi
if ! make -s -C "$ROOT" fuzz > "$TMP/build.log" 2>&1; then
    for h in $HARNESSES; do fail "fuzz $h: make fuzz failed"; done
    tail -20 "$TMP/build.log"
    exit 0
fi

for h in $HARNESSES; do
    corpus=$TMP/corpus-$h
    mkdir -p "$corpus"
    cp "$ROOT/tests/fuzz/corpus/$h/"* "$corpus/"
    # the corpus is a copy: what the fuzzer finds does not grow the repository
    if timeout -k 10 $((SECONDS_EACH + 60)) "$ROOT/build-fuzz/fuzz_$h" -max_total_time="$SECONDS_EACH" \
            -timeout=10 -rss_limit_mb=2048 -close_fd_mask=2 -artifact_prefix="$TMP/$h-" \
            "$corpus" > "$TMP/$h.log" 2>&1; then
        pass "fuzz $h ($(grep -o 'Done [0-9]* runs' "$TMP/$h.log"))"
    else
        fail "fuzz $h: exit $?"
        grep -A20 -E 'ERROR|runtime error|deadly signal' "$TMP/$h.log" | head -40
        for a in "$TMP/$h-"*; do
            [ -f "$a" ] && { echo "input $(basename "$a"):"; od -c "$a" | head -10; }
        done
    fi
done
