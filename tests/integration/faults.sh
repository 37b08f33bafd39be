#!/bin/bash
# A rank that dies or stops: every other rank exits non-zero within the
# timeout, the rank that never came is named, nothing hangs and nothing is
# left behind.
source "$(dirname "$0")/../lib.sh"

# start_job N TRANSPORT TIMEOUT: a never-ending sweep in the background; waits for the header
start_job() {
    : > "$TMP/job.out"
    rm -rf "$TMP/outdir" && mkdir -p "$TMP/outdir"
    timeout -k 5 120 mpirun --oversubscribe -np "$1" "$CB" all_reduce --transport "$2" -b 1M -e 1M \
        -N 0 -n 5 -w 0 -c 0 -I 0 -T "$3" -J "$TMP/outdir/job.json" > "$TMP/job.out" 2> "$TMP/job.err" &
    JOB=$!
    for _ in $(seq 300); do grep -q '^ *1048576 ' "$TMP/job.out" && return 0; sleep 0.1; done
    return 1
}

rank_pid() { sed -n "s/^#  *Rank *$1 .*Pid *\([0-9]*\).*/\1/p" "$TMP/job.out" | head -1; }

# wait_job SECONDS: the job's exit status, or 999 if it is still running after SECONDS
wait_job() {
    for _ in $(seq $(($1 * 10))); do
        kill -0 $JOB 2>/dev/null || { wait $JOB; return $?; }
        sleep 0.1
    done
    kill -9 $JOB 2>/dev/null; pkill -9 -f "$CB" 2>/dev/null
    return 999
}

# Left behind: live ranks, a temporary JSON file, or a JSON file that does not
# parse (-N 0 rewrites it whole after every cycle, through a rename). shm FIFOs
# are memfds and have no name to leave; the process check covers them.
leftovers() {
    pgrep -f "$CB " >/dev/null && echo "processes"   # this tree's binary only: other checkouts may be running
    ls "$TMP/outdir" | grep -v '^job\.json$'
    [ ! -e "$TMP/outdir/job.json" ] || /usr/bin/python3 "$ROOT/tests/validate_json.py" "$TMP/outdir/job.json" \
        > /dev/null 2>&1 || echo "a JSON file that does not parse or match docs/collbench-run.schema.json"
}

for transport in shm tcp; do
    name="killed rank, $transport"
    if start_job 3 "$transport" 10; then
        pid=$(rank_pid 1)
        kill -9 "$pid"
        t0=$SECONDS; wait_job 40; rc=$?
        if [ $rc = 0 ] || [ $rc = 999 ]; then fail "$name: exit $rc after $((SECONDS - t0)) s"
        elif [ -n "$(leftovers)" ]; then fail "$name: left $(leftovers)"
        elif ! grep -qiE 'rank 1|process rank 1' "$TMP/job.err"; then fail "$name: rank 1 not named"; cat "$TMP/job.err" | head
        else pass "$name (exit $rc in $((SECONDS - t0)) s)"; fi
    else
        fail "$name: job did not start"; cat "$TMP/job.err" | head; kill -9 $JOB 2>/dev/null
    fi

    # Two ranks, so the one left waits on the stopped one itself: with more, the
    # first to time out may be waiting on a live rank that waits on the stopped
    # one, and names the rank it waited for, as it should.
    name="stopped rank, $transport"
    if start_job 2 "$transport" 4; then
        pid=$(rank_pid 1)
        kill -STOP "$pid"
        t0=$SECONDS; wait_job 40; rc=$?
        kill -9 "$pid" 2>/dev/null
        if [ $rc = 0 ] || [ $rc = 999 ]; then fail "$name: exit $rc after $((SECONDS - t0)) s"
        elif [ -n "$(leftovers)" ]; then fail "$name: left $(leftovers)"
        elif ! grep -qE 'timed out after 4 s .*rank 1 ' "$TMP/job.err"; then fail "$name: rank 1 not named"; head "$TMP/job.err"
        else pass "$name (exit $rc in $((SECONDS - t0)) s)"; fi
    else
        fail "$name: job did not start"; head "$TMP/job.err"; kill -9 $JOB 2>/dev/null
    fi
done
