#!/bin/bash
# Output files and signals. Every file collbench writes (-J, --csv, pairs -J,
# tune -o) appears whole or not at all, never replaces what is not a regular
# file, is never redirected through a planted link, and a write that fails
# (full disk) is a non-zero exit leaving no temporary file. SIGTERM/SIGINT
# stop the ranks (143/130) with nothing left behind; -N 0 keeps its files
# bounded. Runs in a private mount namespace: the small tmpfs, device node
# and links live there, never in the real /dev.
if [ -z "${CB_FILES_NS:-}" ] && unshare -m --propagation private true 2>/dev/null; then
    CB_FILES_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi
source "$(dirname "$0")/../lib.sh"
if [ -z "${CB_FILES_NS:-}" ]; then
    skip "output files: no private mount namespace (unshare -m needs root)"; exit 0
fi
MNT=$TMP/mnt
mkdir -p "$MNT"
trap 'umount "$MNT" 2>/dev/null; rm -rf "$TMP"' EXIT
export MPI_TIMEOUT=120
PY=/usr/bin/python3
export RCDIR=$TMP/rc

# A fresh 64 KiB tmpfs at $MNT, private to this namespace.
small_fs() {
    umount "$MNT" 2>/dev/null
    mount -t tmpfs -o size=64k,mode=0755 tmpfs "$MNT"
}

# ...and full: a file can be created (an inode), but no byte fits.
full_fs() {
    small_fs
    head -c 100000 /dev/zero > "$MNT/fill" 2>/dev/null
}

left_in() { ls -A "$1" | grep -v "^$2\$" | tr '\n' ' '; }

# refused NAME TEXT CMD...: exit 2 with TEXT in the message
refused() {
    local name=$1 text=$2; shift 2
    expect_rc 2 "$name" "$@" || return 1
    if ! grep -q -- "$text" "$TMP/err"; then fail "$name: message lacks '$text'"; head -3 "$TMP/err"; return 1; fi
    return 0
}

RUN=(all_reduce -b 8 -e 64 -f 2 -n 2 -w 1)

# ---- targets that are not regular files ----
small_fs
mknod "$MNT/null" c 1 3
name="-J device node"
if refused "$name" "is a character device" mpi 2 "${RUN[@]}" -J "$MNT/null"; then
    if [ -c "$MNT/null" ] && [ -z "$(left_in "$MNT" null)" ]; then pass "$name"
    else fail "$name: the node was replaced or files were left: $(ls -l "$MNT")"; fi
fi

mkfifo "$MNT/fifo"
name="--csv FIFO"
if refused "$name" "is a FIFO" mpi 2 "${RUN[@]}" --csv "$MNT/fifo"; then
    if [ -p "$MNT/fifo" ]; then pass "$name"; else fail "$name: the FIFO was replaced"; fi
fi
name="pairs -J FIFO"
if refused "$name" "is a FIFO" mpi 2 pairs -b 64K -J "$MNT/fifo"; then
    if [ -p "$MNT/fifo" ]; then pass "$name"; else fail "$name: the FIFO was replaced"; fi
fi
name="tune -o FIFO"
if refused "$name" "is a FIFO" mpi 2 tune -o "$MNT/fifo"; then
    if [ -p "$MNT/fifo" ]; then pass "$name"; else fail "$name: the FIFO was replaced"; fi
fi

echo precious > "$MNT/victim"
ln -s "$MNT/victim" "$MNT/link"
name="-J symlink"
if refused "$name" "is a symbolic link" mpi 2 "${RUN[@]}" -J "$MNT/link"; then
    if [ -L "$MNT/link" ] && [ "$(cat "$MNT/victim")" = precious ]; then pass "$name"
    else fail "$name: the link or its target changed"; fi
fi

# ---- a full disk ----
for flag in -J --csv; do
    name="$flag on a full disk"
    full_fs
    expect_rc 1 "$name" mpi 2 "${RUN[@]}" -I 1 -n 200 "$flag" "$MNT/out" || continue
    if ! grep -q "No space left on device" "$TMP/err"; then fail "$name: error not named"; head -3 "$TMP/err"
    elif [ -n "$(left_in "$MNT" fill)" ]; then fail "$name: left $(left_in "$MNT" fill)"
    else pass "$name"; fi
done
name="tune -o on a full disk"
full_fs
if expect_rc 1 "$name" mpi 2 tune -o "$MNT/tune.txt"; then
    if [ -n "$(left_in "$MNT" fill)" ]; then fail "$name: left $(left_in "$MNT" fill)"; else pass "$name"; fi
fi
umount "$MNT"

# ---- a link planted at a guessable temporary name ----
# In a new PID namespace every pid is small: a link at "<path>.tmp.<pid>" for
# each of them covers whatever pid rank 0 gets.
name="pairs -J through planted links"
mkdir -p "$TMP/plant"
echo precious > "$TMP/plant/victim"
if unshare -p -f --mount-proc bash -c '
        '"$PY"' -c "import os, sys
for p in range(1, 3001): os.symlink(sys.argv[1] + \"/victim\", sys.argv[1] + \"/p.json.tmp.%d\" % p)" "$1"
        shift; "$@"' plant "$TMP/plant" \
        timeout -k 5 120 mpirun --oversubscribe -np 2 "$CB" pairs -b 64K -J "$TMP/plant/p.json" \
        > "$TMP/out" 2> "$TMP/err"; then rc=0; else rc=$?; fi
# exit 1 is pairs naming an outlier (a loaded machine is noisy): the file still counts
if [ $rc -le 1 ]; then
    if [ "$(cat "$TMP/plant/victim")" != precious ]; then fail "$name: the link's target was overwritten"
    elif ! $PY -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/plant/p.json"; then fail "$name: no JSON"
    elif [ "$(ls "$TMP/plant" | grep -c '\.tmp\.')" != 3000 ]; then fail "$name: planted links touched"
    else pass "$name"; fi
else
    fail "$name: exit $rc"; tail -3 "$TMP/err"
fi

# ---- SIGTERM and SIGINT ----
OUT=$TMP/sig
# start_job N TIMEOUT ARGS...: a sweep in the background, never-ending unless
# ARGS give -N; waits until the table has $ROWS rows (default 1)
start_job() {
    local n=$1 t=$2; shift 2
    rm -rf "$OUT" "$TMP/rc" && mkdir -p "$OUT" "$TMP/rc"
    # each rank's own exit status in $TMP/rc/RANK: mpirun's is the first
    # rank's to reach it, which may be a peer's that saw the stopped one go
    timeout -k 5 120 mpirun --oversubscribe -np "$n" sh -c '"$0" "$@"; rc=$?; echo $rc > "$RCDIR/$OMPI_COMM_WORLD_RANK"; exit $rc' \
        "$CB" all_reduce -N 0 -T "$t" -J "$OUT/j.json" "$@" > "$TMP/job.out" 2> "$TMP/job.err" &
    JOB=$!
    for _ in $(seq 600); do
        [ "$(grep -cvE '^#|^$' "$TMP/job.out")" -ge "${ROWS:-1}" ] && return 0
        sleep 0.1
    done
    return 1
}
rank_pid() { sed -n "s/^#  *Rank *$1 .*Pid *\([0-9]*\).*/\1/p" "$TMP/job.out" | head -1; }
rank_pids() { sed -n "s/^#  *Rank *[0-9]* .*Pid *\([0-9]*\).*/\1/p" "$TMP/job.out"; }
# wait_gone SECONDS PIDS...: 0 once none of PIDS runs
wait_gone() {
    local secs=$1; shift
    for _ in $(seq $((secs * 10))); do
        local alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
    return 1
}
# end_job: end a job that went wrong: timeout hands SIGTERM to mpirun,
# which ends its ranks; what still runs after that is killed.
end_job() {
    kill -TERM "$JOB" 2>/dev/null
    wait_gone 15 "$JOB"
    for p in $(rank_pids); do kill -9 "$p" 2>/dev/null; done
    kill -9 "$JOB" 2>/dev/null
    wait "$JOB" 2>/dev/null
}
# the job's exit status, or 999 (job ended) when it outlives SECONDS
wait_job() {
    wait_gone "$1" "$JOB" && { wait "$JOB"; return $?; }
    end_job
    return 999
}

T=10
for sig in TERM INT; do
    want=$([ $sig = TERM ] && echo 143 || echo 130)
    name="SIG$sig to one rank, mpirun default"
    if ! start_job 3 $T -b 1K -e 1M -f 4 -n 5 -w 0 -c 1 --algo ring; then
        fail "$name: job did not start"; head -3 "$TMP/job.err"; end_job; continue
    fi
    pids=$(rank_pids)
    kill -$sig "$(rank_pid 1)"
    wait_gone $((3 * T)) $pids; gone=$?
    wait_job 30; rc=$(cat "$TMP/rc/1" 2>/dev/null)
    if [ "$rc" != $want ]; then fail "$name: rank 1 exit ${rc:-none}, expected $want"; grep collbench "$TMP/job.err" | head -5
    elif [ $gone != 0 ]; then fail "$name: ranks outlived the job"
    elif ! grep -q "rank 1@.*stopped by SIG$sig" "$TMP/job.err"; then fail "$name: rank 1 did not say why"
    elif [ -n "$(left_in "$OUT" j.json)" ]; then fail "$name: left $(left_in "$OUT" j.json)"
    else pass "$name"; fi
done

# Without mpirun's own abort, the other rank finds the stopped one gone by
# itself, names it and exits non-zero within -T. (Two ranks, so the one left
# waits on the stopped one itself, as in faults.sh.)
for transport in shm tcp; do
    name="SIGTERM to one rank, the other follows, $transport"
    if OMPI_MCA_orte_abort_on_non_zero_status=0 start_job 2 $T -b 1K -e 1M -f 4 -n 5 -w 0 -c 1 --algo ring \
            --transport $transport; then
        pids=$(rank_pids)
        kill -TERM "$(rank_pid 1)"
        if ! wait_gone $((3 * T)) $pids; then fail "$name: ranks still running after $((3 * T)) s"
        elif ! grep -qE 'rank 0@.*(rank 1\b.*(exited|closed)|timed out .*rank 1\b)' "$TMP/job.err"; then
            fail "$name: rank 0 did not name rank 1"; grep collbench "$TMP/job.err" | head -5
        else pass "$name"; fi
        wait_job 30
    else
        fail "$name: job did not start"; head -3 "$TMP/job.err"; end_job
    fi
done

# SIGKILL while rank 0 writes a large JSON: nothing is left behind, as the
# file has no name yet. The write is caught without forking in the loop: a
# new fd of rank 0 stops it (SIGSTOP), and if that fd is in the output
# folder it is killed there; otherwise it goes on.
# open_fds PID: how many fds PID has (a glob: no process started)
open_fds() { local f=(/proc/"$1"/fd/*); echo ${#f[@]}; }
name="SIGKILL during the JSON write"
if start_job 2 60 -b 64K -e 128K -f 2 -n 2000 -w 0 -c 0 -I 1 --algo ring; then
    pid0=$(rank_pid 0)
    caught=0 base=$(open_fds "$pid0") deadline=$((SECONDS + 90))
    while [ $caught = 0 ] && [ $SECONDS -lt $deadline ] && kill -0 "$pid0" 2>/dev/null; do
        n=$(open_fds "$pid0")
        if [ "$n" -gt "$base" ]; then
            kill -STOP "$pid0"
            if [ -n "$(find /proc/"$pid0"/fd -lname "$OUT/*" 2>/dev/null)" ]; then
                kill -9 "$pid0"; caught=1
            else
                base=$n; kill -CONT "$pid0"
            fi
        elif [ "$n" -lt "$base" ]; then
            base=$n
        fi
    done
    wait_job 30
    if [ $caught = 0 ]; then fail "$name: rank 0 was never caught writing"
    elif [ -n "$(left_in "$OUT" j.json)" ]; then fail "$name: left $(left_in "$OUT" j.json)"
    else pass "$name"; fi
else
    fail "$name: job did not start"; head -3 "$TMP/job.err"; end_job
fi

cat > "$TMP/bounded.py" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["cycles"]
assert c["done"] >= 600 and c["results_hold"] == "last cycle", c["done"]
assert len(d["results"]) == 1, len(d["results"])
r = c["recent"]
assert len(r) == c["window"] == 256, (len(r), c["window"])
assert [e["cycle"] for e in r] == list(range(c["done"] - 256, c["done"])), "not the latest cycles in order"
assert len(open(sys.argv[2]).read().splitlines()) == 1 + 2, "csv rows"
EOF
# Rank 0 stopped on SIGINT writes what the complete cycles hold. -N 0 keeps the
# last cycle's rows and a bounded window of per-cycle summaries, whatever the
# number of cycles.
name="-N 0 stopped by SIGINT: bounded JSON"
if ROWS=600 start_job 2 $T -b 8 -e 8 -n 1 -w 0 -c 1 --algo ring --csv "$OUT/j.csv"; then
    kill -INT "$(rank_pid 0)"
    wait_job 30; rc=$(cat "$TMP/rc/0" 2>/dev/null)
    if [ "$rc" != 130 ]; then fail "$name: rank 0 exit ${rc:-none}, expected 130"; grep collbench "$TMP/job.err" | head -5
    elif [ -n "$(left_in "$OUT" 'j\.json\|j\.csv')" ]; then fail "$name: left $(left_in "$OUT" 'j\.json\|j\.csv')"
    elif ! msg=$($PY "$TMP/bounded.py" "$OUT/j.json" "$OUT/j.csv" 2>&1); then fail "$name: $(echo "$msg" | tail -1)"
    else pass "$name"; fi
else
    fail "$name: job did not start"; head -3 "$TMP/job.err"; end_job
fi
