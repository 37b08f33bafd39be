#!/bin/bash
# Every mistake a user can make on the command line: one line that says what
# was wrong, exit status 2, no crash, no partial output file.
source "$(dirname "$0")/../lib.sh"

# case NAME EXPECTED_TEXT ARGS... (run under mpirun with 2 ranks)
bad() {
    local name=$1 text=$2; shift 2
    if expect_rc 2 "$name" mpi 2 "$@"; then
        if ! grep -qi -- "$text" "$TMP/err"; then
            fail "$name: message lacks '$text'"; head -3 "$TMP/err"; return
        fi
        if grep -qiE 'segmentation|sanitizer|core dumped' "$TMP/err"; then
            fail "$name: crashed"; return
        fi
        pass "$name"
    fi
}

bad "unknown flag" "unknown option '--frobnicate'" all_reduce --frobnicate
bad "bad size suffix" "bad size '8X'" all_reduce -b 8X
bad "bad size text" "bad size 'lots'" all_reduce -e lots
bad "min above max" "larger than -e" all_reduce -b 1M -e 1K
bad "unknown type" "unknown type 'float7'" all_reduce -d float7
bad "unknown op" "unknown op 'xor'" all_reduce -o xor
bad "op for a non-reducing collective" "makes no sense for all_gather" all_gather -o prod
bad "root beyond the job" "not a rank of this job of 2" broadcast -r 5
bad "unknown collective" "unknown collective 'all_reduse'" all_reduse
bad "missing value" "needs a value" all_reduce -b
bad "negative timeout" "bad timeout '-1'" all_reduce -T -1
bad "bad factor" "bad factor 'x2'" all_reduce -f x2
# nccl-tests' GPU flags with values that mean nothing for host memory
bad "two GPUs per rank" "-g 2 has no meaning for host memory" all_reduce -g 2
bad "four threads per rank" "-t 4 has no meaning for host memory" all_reduce --nthreads 4
bad "a device implementation" "-D 1 has no meaning for host memory" all_reduce -D 1
bad "a CTA policy" "-x 2 has no meaning for host memory" all_reduce -x 2
bad "unknown format" "unknown --format 'xml'" all_reduce --format xml
bad "unknown transport" "unknown transport 'carrier-pigeon'" all_reduce --transport carrier-pigeon
bad "unknown algorithm" "unknown algorithm 'magic'" all_reduce --algo magic
bad "JSON path not writable" "cannot write JSON file" all_reduce -b 8 -e 8 -J /nonexistent-dir/out.json
bad "CSV path not writable" "csv" all_reduce -b 8 -e 8 --csv /nonexistent-dir/out.csv

# a refused run leaves nothing in a folder it could have written to
mkdir -p "$TMP/outdir"
bad "refused run with -J" "not a rank of this job" broadcast -r 5 -J "$TMP/outdir/run.json" --csv "$TMP/outdir/run.csv"
if [ -z "$(ls -A "$TMP/outdir")" ]; then pass "no JSON or CSV left behind"; else fail "no JSON or CSV left behind: $(ls "$TMP/outdir")"; fi

# not started by a launcher
name="started without mpirun"
if env -u OMPI_COMM_WORLD_SIZE -u OMPI_COMM_WORLD_RANK timeout 30 "$CB" all_reduce -b 8 -e 8 \
        > "$TMP/out" 2> "$TMP/err"; then
    fail "$name: exit 0"
else
    rc=$?
    if [ $rc = 2 ] && grep -q "mpirun -np N" "$TMP/err"; then pass "$name"; else fail "$name: exit $rc"; cat "$TMP/err"; fi
fi

# inside a Slurm allocation (salloc, sbatch) without srun: the job's variables
# are there but no step's; the message says so rather than blaming the MPI build
name="started in a Slurm allocation without srun"
if env -u OMPI_COMM_WORLD_SIZE -u OMPI_COMM_WORLD_RANK -u SLURM_STEP_NUM_TASKS SLURM_JOB_ID=4242 SLURM_NTASKS=4 \
        SLURM_PROCID=0 timeout 30 "$CB" all_reduce -b 8 -e 8 > "$TMP/out" 2> "$TMP/err"; then
    fail "$name: exit 0"
else
    rc=$?
    if [ $rc = 2 ] && grep -q "Slurm allocation 4242 but not by srun" "$TMP/err"; then pass "$name"
    else fail "$name: exit $rc: $(cat "$TMP/err")"; fi
fi

# --help works anywhere and exits 0
if timeout 10 "$CB" --help | grep -q -- '--transport'; then pass "--help"; else fail "--help"; fi
# nccl-tests' binary names, with what cluster health checks pass them: the
# GPU flags' values that mean "one", long names, nccl-tests' value forms
if expect_rc 0 "all_reduce_perf alias" timeout 120 mpirun -np 2 "$ROOT/$BUILD/all_reduce_perf" -b 8 -e 64 -f 2 -n 2 \
        -g 1 -t 1 -G 0 --nthreads 1 --ngpus 1 --cudagraph 0 -p 0 -y 0 -C 0 -S 0 -R 1 -x 0 -D 0 -V 16 -M 0 -K 0 \
        -T 0 -z 3 -u 1 -c 1 -w 1 -a 1 &&
   grep -q '^# Collective test concluded: all_reduce_perf$' "$TMP/out"; then
    pass "all_reduce_perf alias"
fi
if expect_rc 0 "nccl-tests sweep and size forms" timeout 120 mpirun -np 2 "$ROOT/$BUILD/reduce_perf_mpi" \
        -b 0.5K -e 1.5K -f 1 -i 0.5K -n 1 &&
   [ "$(grep -cvE '^#|^$' "$TMP/out")" = 3 ]; then
    pass "nccl-tests sweep and size forms"
fi
