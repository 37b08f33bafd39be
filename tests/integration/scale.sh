#!/bin/bash
# Control plane at scale: ranks oversubscribed on this host with every pair
# connected, results checked bit-exact: alltoall (pairwise) over tcp at 64
# ranks, the direct all_reduce over tcp and shm at 16 (a 64-rank job takes
# 40 s or more here before it connects anything, so one is all the time
# allows). Every rank's reported transport buffers must be what `collbench
# model --scale` computes from the slot geometry and at most the bound stated
# here; over tcp, the resident memory of two runs whose FIFOs differ must grow
# by no more than the reported buffers do (a transport allocating per-peer
# memory it does not report fails). tree and rd, whose ranks differ, are
# held to the model at 8 ranks.
source "$(dirname "$0")/../lib.sh"
export OMPI_MCA_mpi_yield_when_idle=1   # MPI's waits in the bootstrap leave the cores to the ranks

N=64 M=16
SLOTS=4
SMALL=16384 LARGE=262144  # slot bytes: multiples of 64, so tcp's slots need no padding
SHM_SLOT_HDR=64           # shm: a slot's header before its data, and a page of control per FIFO
PAGE=4096
SLACK=$((4 << 20))        # resident memory besides the FIFOs that may differ between two runs

# bound SLOT_BYTES RANKS: the most a rank's buffers may be with every pair connected
bound_tcp() { echo $((2 * ($2 - 1) * SLOTS * $1)); }            # a send and a receive FIFO per peer
bound_shm() { echo $((($2 - 1) * (SLOTS * ($1 + SHM_SLOT_HDR) + PAGE))); }   # the receiver's memfd only

# check NAME JSON TRANSPORT ALGO SLOT_BYTES BOUND RANKS: every rank's report against the model and the bound
check() {
    local name=$1 json=$2 t=$3 algo=$4 slot=$5 bound=$6 n=$7
    "$CB" model --scale --transport "$t" --ranks "$n" --slots "$SLOTS" --slot-bytes "$slot" --csv > "$TMP/model.csv"
    if /usr/bin/python3 - "$json" "$TMP/model.csv" "$algo" "$bound" > "$TMP/why" <<'PY'
import csv, json, sys
path, model_csv, algo, bound = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
want = next(r for r in csv.DictReader(open(model_csv)) if r["algorithm"] == algo)
conns = [r["connections"] for r in json.load(open(path))["ranks"]]
most = max(conns, key=lambda c: c["buffer_bytes"])
ends = max(c["count"] for c in conns)
if (most["buffer_bytes"], ends) != (int(want["buffer_bytes"]), int(want["conn_ends"])):
    print(f"the most a rank reports, {most['buffer_bytes']} B over {ends} connection ends, "
          f"is not the model's {want['buffer_bytes']} B over {want['conn_ends']}")
    sys.exit(1)
over = [i for i, c in enumerate(conns) if c["buffer_bytes"] > bound]
if over:
    print(f"rank {over[0]} reports {conns[over[0]]['buffer_bytes']} B, above the bound {bound} B")
    sys.exit(1)
PY
    then pass "$name"; else fail "$name: $(cat "$TMP/why")"; fi
}

# run NAME N COLL ARGS...: checked run (-c 1 -I 1), no wrong element
run() {
    local name=$1 n=$2; shift 2
    expect_rc 0 "$name" mpi "$n" "$@" -n 1 -w 0 -c 1 && no_wrong "$name"
}

# -T 300: on a loaded 2-core host its set-up alone has taken 50 s
if run "alltoall pairwise tcp np=$N" "$N" alltoall --transport tcp --algo pairwise -b 256K -e 256K -T 300 \
    --slots "$SLOTS" --slot-bytes "$SMALL" -J "$TMP/tcp-alltoall.json"; then
    pass "alltoall pairwise tcp np=$N"
    check "tcp buffers per rank = model <= $(bound_tcp "$SMALL" "$N") B np=$N" "$TMP/tcp-alltoall.json" tcp \
        pairwise "$SMALL" "$(bound_tcp "$SMALL" "$N")" "$N"
fi

for slot in $SMALL $LARGE; do
    if run "all_reduce direct tcp slots of $slot B np=$M" "$M" all_reduce --transport tcp --algo direct \
        -b 256K -e 256K --slots "$SLOTS" --slot-bytes "$slot" -J "$TMP/tcp-direct-$slot.json"; then
        pass "all_reduce direct tcp slots of $slot B np=$M"
        check "tcp buffers per rank = model <= $(bound_tcp "$slot" "$M") B np=$M" "$TMP/tcp-direct-$slot.json" tcp \
            direct "$slot" "$(bound_tcp "$slot" "$M")" "$M"
    fi
done
# tcp's FIFOs are written at set-up, so they are resident: going from SMALL to
# LARGE slots, a rank's VmRSS grows by what its reported buffers grow by,
# give or take SLACK, and not by more.
name="tcp resident memory grows only by the reported buffers np=$M"
if [ -s "$TMP/tcp-direct-$SMALL.json" ] && [ -s "$TMP/tcp-direct-$LARGE.json" ]; then
    if /usr/bin/python3 - "$TMP/tcp-direct-$SMALL.json" "$TMP/tcp-direct-$LARGE.json" "$SLACK" > "$TMP/why" <<'PY'
import json, statistics, sys
small, large = (json.load(open(p))["ranks"] for p in sys.argv[1:3])
slack = int(sys.argv[3])
med = lambda ranks, k: statistics.median(r["connections"][k] for r in ranks)
grew, reported = med(large, "rss_bytes") - med(small, "rss_bytes"), med(large, "buffer_bytes") - med(small, "buffer_bytes")
print(f"VmRSS grew by {grew / 2**20:.1f} MiB (median rank), the reported buffers by {reported / 2**20:.1f} MiB")
sys.exit(0 if reported / 2 <= grew <= reported + slack else 1)
PY
    then pass "$name: $(cat "$TMP/why")"; else fail "$name: $(cat "$TMP/why") (allowed: half of that up to it + $((SLACK >> 20)) MiB)"; fi
else
    skip "$name: a run above failed"
fi

if run "all_reduce direct shm np=$M" "$M" all_reduce --transport shm --algo direct -b 256K -e 256K \
    --slots "$SLOTS" --slot-bytes "$SMALL" -J "$TMP/shm-direct.json"; then
    pass "all_reduce direct shm np=$M"
    check "shm buffers per rank = model <= $(bound_shm "$SMALL" "$M") B np=$M" "$TMP/shm-direct.json" shm direct \
        "$SMALL" "$(bound_shm "$SMALL" "$M")" "$M"
fi

# tree and rd: ranks make different connections; the most any makes is the model's
for algo in tree rd; do
    if run "all_reduce $algo shm np=8" 8 all_reduce --transport shm --algo "$algo" -b 256K -e 256K \
        --slots "$SLOTS" --slot-bytes "$SMALL" -J "$TMP/$algo.json"; then
        check "shm $algo buffers per rank = model np=8" "$TMP/$algo.json" shm "$algo" "$SMALL" \
            "$(bound_shm "$SMALL" 8)" 8
    fi
done

# model --scale's set-up column is the recorded fit of each transport and
# verbs connect mode (build/measured_setup.h comes from these files), to the
# printed digit, at every count: a constant copied by hand drifts and fails
for how in "tcp" "shm" "verbs cm" "verbs oob"; do
    read -r t mode <<< "$how"
    name="model --scale set-up = recorded fit: $how"
    if "$CB" model --scale --transport "$t" ${mode:+--ib-connect "$mode"} --ranks 1024,4096 --csv > "$TMP/m.csv" 2> "$TMP/err" &&
        /usr/bin/python3 - "$ROOT/results/measured" "$how" "$TMP/m.csv" > "$TMP/why" <<'PY'
import csv, json, sys
measured, how, model_csv = sys.argv[1:4]
rows = [r for f in ("bench-scale.json", "verbs-connect.json")
        for r in json.load(open(f"{measured}/{f}"))["tables"]["fit"]["rows"] if r[0] == how]
if len(rows) != 1:
    print(f"{len(rows)} recorded fits named '{how}'")
    sys.exit(1)
fixed_us, per_us = rows[0][1], rows[0][2]
for r in csv.DictReader(open(model_csv)):
    want = (fixed_us + per_us * int(r["conn_ends"])) * 1e-6
    if abs(float(r["setup_s"]) - want) > 0.0005 + 1e-3 * want:
        print(f"{r['algorithm']} at {r['ranks']} ranks: set-up {r['setup_s']} s, the fit gives {want:.3f} s")
        sys.exit(1)
print(f"{fixed_us:.0f} us + {per_us:.0f} us per connection end")
PY
    then pass "$name: $(cat "$TMP/why")"; else fail "$name: $(cat "$TMP/why" "$TMP/err")"; fi
done
