#!/bin/bash
# Under Slurm (Debian's slurm-wlm, one node on this machine, started here on
# loopback ports with its own state folder): srun --mpi=pmix starts a job,
# a process started inside an allocation without srun says so, and the
# shipped sbatch template runs a sweep whose JSON meets the schema.
source "$(dirname "$0")/../lib.sh"
for b in slurmctld slurmd srun sbatch salloc; do
    command -v $b > /dev/null || { skip "slurm: $b not installed (scripts/install-deps --vm)"; exit 0; }
done
S=$TMP/slurm
mkdir -p "$S/state" "$S/spool"
H=$(hostname -s)
# two free loopback ports
read -r P1 P2 < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
cat > "$S/slurm.conf" <<CONF
ClusterName=collbench-test
SlurmctldHost=$H(127.0.0.1)
SlurmctldPort=$P1
SlurmdPort=$P2
AuthType=auth/none
CredType=cred/none
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName=$H NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=test Nodes=$H Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
CONF
export SLURM_CONF=$S/slurm.conf
unset SLURM_JOB_ID SLURM_NTASKS SLURM_STEP_NUM_TASKS
slurmctld -D -i -f "$SLURM_CONF" > "$S/slurmctld.out" 2>&1 & CTLD=$!
slurmd -D -f "$SLURM_CONF" -N "$H" > "$S/slurmd.out" 2>&1 & SLURMD=$!
trap 'kill $CTLD $SLURMD 2>/dev/null; wait $CTLD $SLURMD 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 100); do [ "$(sinfo -h -o %T 2>/dev/null)" = idle ] && break; sleep 0.2; done
if [ "$(sinfo -h -o %T 2>/dev/null)" != idle ]; then
    fail "slurm: the one-node cluster did not come up: $(tail -3 "$S/slurmctld.log" "$S/slurmd.log" 2>&1)"
    exit 0
fi

name="srun --mpi=pmix -n 2"
if expect_rc 0 "$name" timeout -k 5 120 srun --mpi=pmix -n 2 --oversubscribe "$ROOT/$BUILD/all_reduce_perf" \
        -b 1K -e 4K -f 4 -n 2 && no_wrong "$name" &&
   [ "$(grep -c '^#  Rank ' "$TMP/out")" = 2 ]; then
    pass "$name"
fi

name="salloc without srun"
if expect_rc 2 "$name" timeout -k 5 60 salloc -n 2 "$CB" all_reduce -b 8 -e 8; then
    if grep -q "started inside Slurm allocation [0-9]* but not by srun or mpirun" "$TMP/err"; then pass "$name"
    else fail "$name: $(grep -v salloc: "$TMP/err" | head -3)"; fi
fi

name="sbatch of scripts/templates/collbench-sweep.sbatch"
mkdir -p "$TMP/submit"
if (cd "$TMP/submit" && COLLBENCH=$CB expect_rc 0 "$name" timeout -k 5 180 sbatch --wait -n 2 --oversubscribe --time=5 \
        -o "$TMP/submit/job.out" "$ROOT/scripts/templates/collbench-sweep.sbatch" reduce_scatter -b 1K -e 4K -f 4 -n 2); then
    json=$(ls "$TMP"/submit/results/slurm-*/reduce_scatter.json 2>/dev/null)
    if grep -q '^# Out of bounds values : 0 OK' "$TMP/submit/job.out" && [ -n "$json" ] &&
       python3 "$ROOT/tests/validate_json.py" "$json" > "$TMP/why" 2>&1 &&
       [ "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nranks"])' "$json")" = 2 ]; then
        pass "$name"
    else
        fail "$name: $(tail -3 "$TMP/submit/job.out") $(cat "$TMP/why" 2>/dev/null)"
    fi
fi
