#!/bin/bash
# nccl-tests' format (the *_perf names): its header lines, exactly its 13
# columns (21 with -I), its count and redop per collective, its closing
# lines, its -J layout and its exit codes, checked field by field by
# nccl_format.py against nccl-tests' own definitions.
source "$(dirname "$0")/../lib.sh"
CHECK=$ROOT/tests/integration/nccl_format.py
N=3
SIZES='[1024, 4096, 16384]'

# run NAME COLL JSON_ARGS CHECK_ARGS...: run COLL_perf with ARGS, check table and JSON
run() {
    local name=$1 coll=$2 spec=$3; shift 3
    local argv=("$ROOT/$BUILD/${coll}_perf" -b 1K -e 16K -f 4 -n 3 -w 1 "$@" -J "$TMP/$coll.json")
    rm -f "$TMP/$coll.json"
    if expect_rc 0 "$name" timeout -k 5 300 mpirun --oversubscribe -np $N "${argv[@]}"; then
        local args
        args=$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); a["argv"]=sys.argv[2:]; print(json.dumps(a))' \
            "$spec" "${argv[@]}")
        if python3 "$CHECK" "$TMP/out" "$TMP/$coll.json" "$coll" $N "$args" > "$TMP/why"; then
            pass "$name"
        else
            fail "$name: $(head -c 600 "$TMP/why")"
        fi
    fi
}

# the sanitizer pass (QUICK) takes one of the two forms per collective, in turn
i=0
for coll in all_reduce all_gather reduce_scatter alltoall broadcast reduce sendrecv; do
    base='"types": ["float"], "ops": ["sum"], "sizes": '$SIZES', "root": 1, "iters": 3, "program": "'${coll}_perf'"'
    [ "$QUICK" = 1 ] && [ $((i % 2)) = 1 ] ||
        run "$coll nccl-tests format" $coll "{$base, \"per_iter\": 0, \"check\": 1}" -r 1
    [ "$QUICK" = 1 ] && [ $((i % 2)) = 0 ] ||
        run "$coll nccl-tests format -I 1 -c 0" $coll "{$base, \"per_iter\": 1, \"check\": 0}" -r 1 -I 1 -c 0
    i=$((i + 1))
done
types='["int8", "uint8", "int32", "uint32", "int64", "uint64", "half", "float", "double", "bfloat16", "f8e4m3", "f8e5m2"]'
ops='["sum", "prod", "min", "max", "avg", "mulsum"]'   # -o all includes mulsum, as in nccl-tests
for coll in all_reduce alltoall; do
    [ "$QUICK" = 1 ] && continue
    run "$coll nccl-tests format -d all -o all" $coll \
        "{\"types\": $types, \"ops\": $ops, \"sizes\": [1024], \"root\": 0, \"iters\": 1, \"per_iter\": 0, \"check\": 1, \"program\": \"${coll}_perf\"}" \
        -e 1K -n 1 -d all -o all
done

# mulsum, nccl-tests' pre-multiplied sum: its redop column, every element checked
for coll in all_reduce reduce_scatter reduce; do
    [ "$QUICK" = 1 ] && [ $coll != reduce_scatter ] && continue
    run "$coll nccl-tests format -o mulsum" $coll \
        "{\"types\": [\"half\", \"int32\", \"f8e4m3\"], \"ops\": [\"mulsum\"], \"sizes\": $SIZES, \"root\": 1, \"iters\": 3, \"per_iter\": 0, \"check\": 1, \"program\": \"${coll}_perf\"}" \
        -r 1 -d half,int32,f8e4m3 -o mulsum
done

# -r all: nccl-tests' sweep over every root, for the rooted collectives
run "reduce nccl-tests format -r all" reduce \
    "{\"types\": [\"float\"], \"ops\": [\"sum\", \"max\"], \"sizes\": [1024], \"root\": \"all\", \"iters\": 1, \"per_iter\": 0, \"check\": 1, \"program\": \"reduce_perf\"}" \
    -e 1K -n 1 -o sum,max -r all

# NCCL_TESTS_MIN_BW: below 0.9 x the average bus bandwidth fails with nccl-tests' exit status
name="NCCL_TESTS_MIN_BW failed"
if NCCL_TESTS_MIN_BW=100000 expect_rc 7 "$name" mpi 2 all_reduce --format nccl-tests -b 1K -e 1K -n 2; then
    if grep -qE '^# Avg bus bandwidth    : \S+ FAILED$' "$TMP/out"; then pass "$name"; else fail "$name: $(grep Avg "$TMP/out")"; fi
fi
name="NCCL_TESTS_MIN_BW met"
if NCCL_TESTS_MIN_BW=0.000001 expect_rc 0 "$name" mpi 2 all_reduce --format nccl-tests -b 1K -e 1K -n 2 -J "$TMP/m.json"; then
    if grep -qE '^# Avg bus bandwidth    : \S+ OK$' "$TMP/out" && grep -q '"okay":"true"}' "$TMP/m.json"; then
        pass "$name"; else fail "$name: $(grep Avg "$TMP/out")"; fi
fi
name="NCCL_TESTS_MIN_BW in the native format"
if NCCL_TESTS_MIN_BW=100000 expect_rc 1 "$name" mpi 2 all_reduce -b 1K -e 1K -n 2; then
    if grep -q 'Avg bus bandwidth.*FAILED' "$TMP/out"; then pass "$name"; else fail "$name: $(grep Avg "$TMP/out")"; fi
fi

# an existing -J file is kept, the new one goes to FILE.0, as nccl-tests does
name="existing JSON file kept"
echo keep > "$TMP/k.json"
if expect_rc 0 "$name" mpi 2 all_reduce --format nccl-tests -b 1K -e 1K -n 1 -J "$TMP/k.json"; then
    if [ "$(cat "$TMP/k.json")" = keep ] && python3 -m json.tool "$TMP/k.json.0" > /dev/null &&
       head -1 "$TMP/out" | grep -qx "# Writing JSON output to $TMP/k.json.0"; then
        pass "$name"; else fail "$name: $(ls "$TMP"/k.json*)"; fi
fi

# the native format keeps collbench's columns under collbench's name
name="native format keeps its columns"
if expect_rc 0 "$name" mpi 2 all_reduce -b 1K -e 1K -n 2 && grep -q '^# collbench ' "$TMP/out" &&
   [ "$(grep -vE '^#|^$' "$TMP/out" | awk '{print NF}' | sort -u)" -gt 13 ]; then
    pass "$name"
fi
