#!/bin/bash
# The verbs transport for real, in ONE Soft-RoCE VM (scripts/rxe-vm: Debian's
# kernel with rdma_rxe under QEMU, on this machine's userland), one boot for
# the whole suite:
#   - test_verbs (cmocka), each case a PASS/FAIL/SKIP line;
#   - the four collectives over --transport verbs on rxe0, 2 and 4 ranks,
#     float/bfloat16/int32, sum/max, out-of-place and in-place, checked (-c 2),
#     and all_reduce / reduce_scatter --algo direct at 3 ranks;
#   - alltoall (pairwise, linear) and the direct all_reduce on shared receive
#     slots: every rank's buffers = `collbench model --scale`'s, below a FIFO
#     per peer each way;
#   - --ib-ar on (write + 0-byte write with immediate) checked bit-exact, and
#     what --ib-ar / --ib-relaxed-ordering put in force shown in the header;
#   - --ib-split-data on and off (each message split over the QPs, or whole
#     on one QP, the QPs in turn) checked bit-exact through 3 QPs, alone and
#     with --ib-ar on, and shown in the header;
#   - the verbs command-line errors through collbench: exit 2 and the message;
#   - a rank killed mid-run (plain mpirun, and mpirun --enable-recovery where
#     the survivors must notice by themselves): the job ends within -T,
#     nothing hangs or stays behind, the device still works afterwards.
# `--transport auto` picks shm on one machine: it is tested across two VMs
# (verbs_two_vms.sh). Without qemu or the kernel package (no network to the
# Debian mirror) the suite prints SKIP lines with the reason, never PASS.
# Uses $COLLBENCH_BUILD (build or build-san); COLLBENCH_QUICK=1: smaller set;
# VERBS_VM_CASES=shared: only the contract suite and the shared slot cases; =data: only the --ib-ar / --ib-relaxed-ordering / --ib-split-data
# cases and test_verbs' exchanges (a quick loop); =connect: only the --ib-connect cases.
#   - --ib-connect oob (QP addresses through the bootstrap, no rdma_cm):
#     every collective bit-exact at 2 and 3 ranks with --qps 2, the header
#     showing oob and the queried traffic class, default_roce_tos set through
#     configfs read back from the QPs, a mode mismatch refused naming both ranks.
# Internally the script runs itself inside the VM with --inside.
source "$(dirname "$0")/../lib.sh"

COLLS="all_reduce all_gather reduce_scatter alltoall"
CASES=${VERBS_VM_CASES:-all}      # all, data or connect
VM_LIMIT=${VERBS_VM_LIMIT:-900}   # seconds for the VM, boot included (a loaded host is slow)

# ------------------------------------------------------------------ outside
if [ "${1:-}" != --inside ]; then
    for f in "$CB" "$ROOT/$BUILD/tests/test_verbs" "$ROOT/$BUILD/tests/test_contract"; do
        [ -x "$f" ] || { fail "verbs VM: $f is missing: build it first (make$([ "$BUILD" = build-san ] && echo ' SANITIZE=1'))"; exit 1; }
    done
    t0=$SECONDS
    cd "$ROOT" || exit 1
    mem=1536
    [ "$BUILD" = build-san ] && mem=3072   # four ASan ranks + MPI do not fit in 1 GiB (OOM kills)
    timeout -k 10 $((VM_LIMIT + 60)) scripts/rxe-vm -t "$VM_LIMIT" -m "$mem" -s "$TMP" \
        -e COLLBENCH_BUILD="$BUILD" -e COLLBENCH_QUICK="$QUICK" -e VERBS_VM_CASES="$CASES" \
        "bash tests/integration/verbs_vm.sh --inside" 2>&1 | tee "$TMP/vm.log"
    rc=${PIPESTATUS[0]}
    if ! grep -q '^rxe-vm\[.*\]: up after' "$TMP/vm.log"; then
        why=$(grep '^rxe-vm\[' "$TMP/vm.log" | grep -v 'console log tail' | tail -1 | sed 's/^rxe-vm\[[^]]*\]: //')
        if [ "$rc" = 125 ]; then
            skip "verbs suite in the Soft-RoCE VM: cannot boot the VM here: ${why:-scripts/rxe-vm failed}"
            exit 0
        fi
        fail "verbs suite in the Soft-RoCE VM: the VM did not start (exit $rc): ${why:-no message}"
        exit 1
    fi
    last=$(sed -n 's/^# case: //p' "$TMP/vm.log" | tail -1)
    done_last=$(grep -cE "^(PASS|FAIL|SKIP): $(printf '%s' "$last" | sed 's/[][\.*^$/]/\\&/g')" "$TMP/vm.log")
    if [ "$rc" = 124 ]; then
        fail "verbs VM: the ${VM_LIMIT} s limit was reached${last:+ during '$last'} (hung? see above)"
    elif [ "$rc" != 0 ] && [ -n "$last" ] && [ "$done_last" = 0 ]; then
        fail "verbs VM: ended with status $rc during '$last'"
    elif [ "$rc" != 0 ] && ! grep -q '^FAIL: ' "$TMP/vm.log"; then
        fail "verbs VM: ended with status $rc without naming a failed case"
    fi
    echo "verbs_vm: $((SECONDS - t0)) s in all (boot included)"
    grep -q '^FAIL: ' "$TMP/vm.log" && exit 1
    exit 0
fi

# ------------------------------------------------------------------- inside
export MPI_TIMEOUT=150
HCA=rxe0:1
NETDEV=eth0
TV=$ROOT/$BUILD/tests/test_verbs
bad=0
case_() { echo "# case: $*"; }
fail() { echo "FAIL: $*"; bad=1; }

# test_verbs: one line per cmocka case; the reason of a skip is the
# "[  SKIP    ] why" message the case printed.
cmocka_lines() {   # $1 output file, $2 exit status, $3 label suffix
    awk -v rc="$2" -v sfx="$3" '
        /^\[ RUN      \] / { cur = $4; why = ""; next }
        /^\[  SKIP    \] / { sub(/^\[  SKIP    \] /, ""); why = $0; next }
        cur != "" && /^\[       OK \] / && $4 == cur { print "PASS: test_verbs " cur sfx; cur = ""; next }
        cur != "" && /^\[  FAILED  \] / && $4 == cur { print "FAIL: test_verbs " cur sfx ": see its output above"; cur = ""; next }
        cur != "" && /^\[  SKIPPED \] / && $4 == cur { print "SKIP: test_verbs " cur sfx ": " (why == "" ? "skipped" : why); cur = ""; next }
        END { if (cur != "") print "FAIL: test_verbs " cur sfx ": crashed or hung (exit " rc ")" }' "$1"
}

unit_tests() {
    local t0=$SECONDS rc
    case_ "test_verbs"
    # test_wire needs two VMs (verbs_two_vms.sh); test_err_memlock is run below without CAP_IPC_LOCK
    CB_TEST_HCA=$HCA CB_TEST_NETDEV=$NETDEV timeout -k 5 400 "$TV" > "$TMP/unit.out" 2>&1
    rc=$?
    cat "$TMP/unit.out"
    cmocka_lines "$TMP/unit.out" "$rc" "" | grep -vE '^SKIP: test_verbs (test_wire|test_err_memlock):'
    if [ "$rc" != 0 ] && ! grep -q '^\[  FAILED  \]' "$TMP/unit.out"; then fail "test_verbs: exit $rc"; fi
    case_ "test_verbs test_err_memlock"
    # root has CAP_IPC_LOCK, which lifts the memlock limit: drop it for this case
    CB_TEST_HCA=$HCA CB_TEST_FILTER=test_err_memlock timeout -k 5 60 \
        setpriv --bounding-set=-ipc_lock "$TV" > "$TMP/unit2.out" 2>&1
    rc=$?
    cat "$TMP/unit2.out"
    cmocka_lines "$TMP/unit2.out" "$rc" " (without CAP_IPC_LOCK)"
    echo "# test_verbs: $((SECONDS - t0)) s"
    contract_tests
}

# the transport contract suite (tests/unit/test_contract.c): its verbs cases
# (own and shared slots) need this VM's device; shm and tcp ran on the host
contract_tests() {
    local rc
    case_ "test_contract (verbs)"
    CB_TEST_HCA=$HCA timeout -k 5 300 "$ROOT/$BUILD/tests/test_contract" > "$TMP/contract.out" 2>&1
    rc=$?
    cat "$TMP/contract.out"
    cmocka_lines "$TMP/contract.out" "$rc" "" | sed 's/^\(PASS\|FAIL\|SKIP\): test_verbs /\1: test_contract /' |
        grep -E '^(PASS|FAIL|SKIP): test_contract verbs_' | sed 's/^SKIP: \(.*\)$/FAIL: \1 (skipped in the VM)/'
}

# run_coll NAME NP ARGS...: one checked run over verbs; PASS when exit 0 and no wrong element
run_coll() {
    local name=$1 np=$2 t0=$SECONDS; shift 2
    case_ "$name"
    if expect_rc 0 "$name" mpi "$np" "$@" --transport verbs --hca "$HCA" -T 60; then
        grep -q '^# nranks .* transport verbs ' "$TMP/out" || { fail "$name: header does not say transport verbs"; return 1; }
        no_wrong "$name" && pass "$name ($((SECONDS - t0)) s)"
    else
        bad=1
        return 1
    fi
}

collectives() {
    # 1000 B and 96000 B: with 4 KiB x 4 slots the larger needs several FIFO rounds per step
    local np coll ops ranks="2 4" sizes=(-b 1000 -e 96000 -f 96)
    local types=float,bfloat16,int32
    # quick (sanitizer) pass: 2 ranks for all, 3 for alltoall (the many-peer pattern), fewer types
    [ "$QUICK" = 1 ] && ranks="2 3" types=float,int32
    for np in $ranks; do
        for coll in $COLLS; do
            ops=
            case $coll in all_reduce|reduce_scatter) ops="-o sum,max" ;; esac
            [ "$QUICK" = 1 ] && [ "$np" = 3 ] && [ "$coll" != alltoall ] && continue
            # shellcheck disable=SC2086
            run_coll "$coll verbs np=$np" "$np" "$coll" "${sizes[@]}" --slot-bytes 4K --slots 4 \
                -d $types $ops -n 1 -w 0 -c 2 -I 0
        done
    done
    # direct: every rank sends to and reduces from every other at once, lent sources
    for coll in all_reduce reduce_scatter; do
        run_coll "$coll --algo direct verbs np=3" 3 "$coll" --algo direct "${sizes[@]}" --slot-bytes 4K --slots 4 \
            -d float,int32 -o sum,max -n 1 -w 0 -c 2 -I 0
    done
    # --hca by prefix (NCCL_IB_HCA's syntax) finds rxe0
    local name="all_reduce verbs np=2 --hca rxe (a prefix)"
    case_ "$name"
    if expect_rc 0 "$name" mpi 2 all_reduce -b 64K -e 64K -n 1 -w 0 -c 1 -I 0 --transport verbs --hca rxe -T 60; then
        if [ "$(grep -c '^#  *Rank .* device=rxe0 ' "$TMP/out")" != 2 ]; then
            fail "$name: the ranks do not both use rxe0"; grep '^#  *Rank' "$TMP/out" | cut -c1-200
        else
            no_wrong "$name" && pass "$name"
        fi
    else
        bad=1
    fi
    # several QPs per connection, default FIFO, a size that needs many slots
    [ "$QUICK" = 1 ] || run_coll "all_reduce verbs np=2 qps=2 2M" 2 all_reduce -b 2M -e 2M --qps 2 -n 1 -w 0 -c 1 -I 0
    # offered destinations (messages of 64 KiB and more written straight into
    # the receiver's buffer): the all-gather steps of all_reduce and
    # all_gather, alltoall's pieces; several QPs split each message
    for coll in all_reduce all_gather alltoall; do
        for np in 2 4; do
            [ "$QUICK" = 1 ] && [ "$np" = 4 ] && continue
            run_coll "$coll verbs np=$np offered destinations" "$np" "$coll" -b 192K -e 3M -f 4 -d float,int32 \
                --slot-bytes 256K -n 1 -w 0 -c 2 -I 0
        done
    done
    run_coll "all_reduce verbs np=3 qps=3 offered destinations" 3 all_reduce -b 3M -e 3M --qps 3 --slot-bytes 128K \
        -d float -n 1 -w 0 -c 2 -I 0
}

# shows NAME TEXT: every rank's header line in $TMP/out has TEXT (after a PASS of run_coll)
shows() {
    local n
    n=$(grep -E '^#  *Rank ' "$TMP/out" | grep -cF -- "$2")
    if [ "$n" = 0 ] || [ "$n" != "$(grep -cE '^#  *Rank ' "$TMP/out")" ]; then
        fail "$1: not every rank's header shows '$2'"; grep -E '^#  *Rank ' "$TMP/out" | cut -c1-400
    else
        pass "$1: the header shows $2"
    fi
}

# --ib-ar and --ib-relaxed-ordering (NCCL's adaptive-routing form and PCIe
# relaxed ordering): RoCE's defaults in the header, and the AR form checked
# bit-exact: pieces of 4 KiB or more as an RDMA write then a 0-byte write
# with immediate, smaller ones as one write with immediate, through 3 QPs,
# staging slots and offered destinations (messages of 64 KiB and more)
data_path_settings() {
    run_coll "all_reduce verbs np=2 defaults on RoCE" 2 all_reduce -b 64K -e 64K -n 1 -w 0 -c 1 -I 0 &&
        shows "defaults on RoCE" 'adaptive_routing="off (auto: RoCE)"' &&
        shows "defaults on RoCE" 'relaxed_ordering="requested (auto;'
    run_coll "all_reduce verbs np=3 --ib-ar on qps=3" 3 all_reduce -b 1000 -e 3M -f 48 --qps 3 --slot-bytes 128K \
        --ib-ar on --ib-ar-threshold 4K -d float,int32 -o sum,max -n 1 -w 0 -c 2 -I 0 &&
        shows "--ib-ar on" 'adaptive_routing="on (--ib-ar on): pieces of 4096 B or more'
    run_coll "alltoall verbs np=3 --ib-ar on, --ib-relaxed-ordering off" 3 alltoall -b 3000 -e 3M -f 32 \
        --slot-bytes 256K --ib-ar on --ib-ar-threshold 4K --ib-relaxed-ordering off -d float -n 1 -w 0 -c 2 -I 0 &&
        shows "--ib-relaxed-ordering off" 'relaxed_ordering="off (--ib-relaxed-ordering off)"'
}

# --ib-split-data (NCCL_IB_SPLIT_DATA_ON_QPS): through 3 QPs, off (each
# message whole on QP s mod 3, so messages on different QPs land out of
# order) and on (3 pieces, one immediate each), bit-exact from small
# messages (sizes not a multiple of 3 x 64 B, empty pieces) to 128 KiB slots
# whose all-gather steps and alltoall pieces go to offered destinations;
# auto is off; off with --ib-ar on (a whole message as write + 0-byte write
# with immediate)
split_data_settings() {
    local sizes=(-b 4 -e 3M -f 28) sb=(--slot-bytes 128K) ct=(-n 1 -w 0 -c 2 -I 0)
    run_coll "all_reduce verbs np=3 qps=3 --ib-split-data off" 3 all_reduce "${sizes[@]}" --qps 3 "${sb[@]}" \
        --ib-split-data off -d float,int32 -o sum,max "${ct[@]}" &&
        shows "--ib-split-data off" 'split_data="off (--ib-split-data off): each message whole on one QP, QPs in turn"'
    run_coll "all_reduce verbs np=3 qps=3 --ib-split-data on" 3 all_reduce "${sizes[@]}" --qps 3 "${sb[@]}" \
        --ib-split-data on -d float,int32 -o sum,max "${ct[@]}" &&
        shows "--ib-split-data on" 'split_data="on (--ib-split-data on): each message in 3 pieces, one per QP"'
    # the quick (sanitizer) pass: all_reduce's runs take every split path once; the others repeat them
    [ "$QUICK" = 1 ] || split_data_more "${sb[@]}"
    run_coll "all_reduce verbs np=2 qps=3 --ib-split-data off --ib-ar on" 2 all_reduce "${sizes[@]}" --qps 3 \
        "${sb[@]}" --ib-split-data off --ib-ar on --ib-ar-threshold 4K -d float,int32 -o sum "${ct[@]}" &&
        shows "--ib-split-data off --ib-ar on" 'adaptive_routing="on (--ib-ar on)' &&
        shows "--ib-split-data off --ib-ar on" 'split_data="off (--ib-split-data off)'
    run_coll "all_reduce verbs np=2 qps=1 split on (nothing to split)" 2 all_reduce -b 64K -e 64K --ib-split-data on \
        "${ct[@]}" && shows "qps=1 split on" 'split_data="off (--qps 1): each message whole on the one QP"'
}

# split_data_more SLOT-BYTES-ARGS: all_gather and alltoall through 3 QPs, split auto, on and off
split_data_more() {
    local sb=("$@") ct=(-n 1 -w 0 -c 2 -I 0)
    run_coll "all_gather verbs np=3 qps=3 split auto" 3 all_gather -b 3000 -e 3M -f 32 --qps 3 "${sb[@]}" \
        -d float "${ct[@]}" &&
        shows "split auto" 'split_data="off (auto): each message whole on one QP, QPs in turn"'
    run_coll "all_gather verbs np=3 qps=3 --ib-split-data on" 3 all_gather -b 3000 -e 3M -f 32 --qps 3 "${sb[@]}" \
        --ib-split-data on -d float "${ct[@]}"
    local s
    for s in off on; do
        run_coll "alltoall verbs np=3 qps=3 --ib-split-data $s" 3 alltoall -b 3000 -e 3M -f 32 --qps 3 "${sb[@]}" \
            --ib-split-data "$s" -d float "${ct[@]}"
    done
}

# test_verbs' exchanges only (the data group: no full test_verbs run)
unit_exchanges() {
    local pat rc
    for pat in 'test_exchange_*' 'test_split_*' test_lent_source test_offered_destination test_flow_control; do
        case_ "test_verbs $pat"
        CB_TEST_HCA=$HCA CB_TEST_FILTER=$pat timeout -k 5 200 "$TV" > "$TMP/unit.out" 2>&1
        rc=$?
        cat "$TMP/unit.out"
        cmocka_lines "$TMP/unit.out" "$rc" ""
        if [ "$rc" != 0 ] && ! grep -q '^\[  FAILED  \]' "$TMP/unit.out"; then fail "test_verbs $pat: exit $rc"; fi
    done
}

# cli NAME TEXT ARGS...: collbench must exit 2 with TEXT on stderr
cli() {
    local name=$1 text=$2; shift 2
    case_ "$name"
    local np=2
    [ "$QUICK" = 1 ] && np=1   # each sanitized rank costs seconds to start under emulation
    if expect_rc 2 "$name" mpi $np all_reduce -b 8 -e 8 -n 1 -w 0 --transport verbs "$@"; then
        if ! grep -qi -- "$text" "$TMP/err"; then fail "$name: message lacks '$text'"; head -3 "$TMP/err"; return; fi
        if grep -qiE 'segmentation|sanitizer|core dumped' "$TMP/err"; then fail "$name: crashed"; return; fi
        pass "$name"
        grep -m 1 'error:' "$TMP/err" | sed 's/^/    /'
    else
        bad=1
    fi
}

cli_errors() {
    cli "verbs --hca nosuchdev:1" "no RDMA device named 'nosuchdev'" --hca nosuchdev:1
    cli "verbs --hca rxe0:9" "has no port 9" --hca rxe0:9
    # NCCL_IB_HCA's syntax: '=' names whole devices, '^' excludes
    cli "verbs --hca =rxe (exact, no such device)" "no RDMA device named 'rxe'" --hca =rxe
    cli "verbs --hca ^rxe0 (nothing left)" "--hca '^rxe0' leaves no" --hca ^rxe0
    cli "verbs --gid-index 999" "GID index 999 of rxe0 port 1 is empty" --hca "$HCA" --gid-index 999
    # a netdev MTU of 1500 gives a RoCE active MTU of 1024
    ip link set "$NETDEV" mtu 1500
    local i act=
    for i in $(seq 50); do
        act=$(cat /sys/class/infiniband/rxe0/ports/1/active_mtu 2>/dev/null)
        [ -z "$act" ] && act=$(ibv_devinfo -d rxe0 | awk '/active_mtu/ {print $2; exit}')
        [ "$act" = 1024 ] && break
        sleep 0.1
    done
    if [ "$act" != 1024 ]; then
        fail "verbs --mtu 4096 above the active MTU: active MTU is '$act' after netdev MTU 1500, expected 1024"
    else
        cli "verbs --mtu 4096 above the active MTU 1024" "--mtu 4096 is larger than rxe0 port 1's active MTU 1024" \
            --hca "$HCA" --mtu 4096
    fi
    ip link set "$NETDEV" mtu 9000
}

# A rank killed mid-run (kill -9 rank 1 of 3, all_reduce -N 0, -T 10): the
# other ranks exit non-zero within the timeout, no process stays behind (none
# stuck in the kernel: a QP destroyed while its peer writes once hung rxe),
# and the device still works afterwards. Twice: under plain mpirun, which ends
# the job itself when a rank dies, and under mpirun --enable-recovery, which
# leaves the survivors running: they must notice on their own (the rdma_cm
# disconnect, a failed completion, or the -T timeout) and end the job.
stop_job() {   # TERM to timeout -> mpirun -> ranks, then KILL what is left
    local i
    kill -TERM "$job" 2>/dev/null
    for i in $(seq 100); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$job" $(pgrep -x mpirun) $(sed -n 's/^#  *Rank .*Pid *\([0-9]*\).*/\1/p' "$TMP/job.out") 2>/dev/null
    wait "$job" 2>/dev/null
}

killed_rank() {   # $1: extra mpirun options, $2: label
    local name="killed rank, verbs$2" pid rc t0 i took stuck
    case_ "$name"
    : > "$TMP/job.out"
    # shellcheck disable=SC2086
    timeout -k 5 120 mpirun $1 --oversubscribe -np 3 "$CB" all_reduce --transport verbs --hca "$HCA" \
        -b 1M -e 1M -N 0 -n 5 -w 0 -c 0 -I 0 -T 10 > "$TMP/job.out" 2> "$TMP/job.err" &
    job=$!
    for i in $(seq 600); do grep -q '^ *1048576 ' "$TMP/job.out" && break; sleep 0.1; done
    if ! grep -q '^ *1048576 ' "$TMP/job.out"; then
        fail "$name: the job did not start"; tail -5 "$TMP/job.err"; stop_job; return
    fi
    pid=$(sed -n 's/^#  *Rank *1 .*Pid *\([0-9]*\).*/\1/p' "$TMP/job.out" | head -1)
    kill -9 "$pid"
    t0=$SECONDS rc=999
    for i in $(seq 600); do
        kill -0 $job 2>/dev/null || { wait $job; rc=$?; break; }
        sleep 0.1
    done
    took=$((SECONDS - t0))
    grep -E '^collbench\[rank [02]@.*error:' "$TMP/job.err" | head -3 | sed 's/^/    /'
    if [ $rc = 999 ]; then
        fail "$name: the job still runs $took s after rank 1 was killed (-T 10)"
        ps -eo pid,stat,wchan:32,cmd | grep -E 'collbench|mpirun' | grep -v grep
        stop_job
        return
    fi
    sleep 1
    stuck=$(ps -eo pid,stat,wchan:32,cmd | awk '$2 ~ /^D/')
    if pgrep -f "$BUILD/collbench" > /dev/null; then
        fail "$name: processes left after $took s: $(pgrep -af "$BUILD/collbench" | head -3)"
    elif [ -n "$stuck" ]; then
        fail "$name: processes stuck in the kernel: $stuck"
    elif [ $took -gt 25 ]; then
        fail "$name: the job took $took s to end (-T 10)"
    elif [ -z "$1" ] && [ $rc = 0 ]; then
        fail "$name: mpirun exited 0"
    elif [ -n "$1" ] && ! grep -qE '^collbench\[rank [02]@.*error:' "$TMP/job.err"; then
        fail "$name: no surviving rank reported the failure"; tail -5 "$TMP/job.err"
    else
        pass "$name (job ended in $took s, mpirun exit $rc)"
    fi
}

# --ib-connect: oob (NCCL's way) and cm, each checked bit-exact; the header says which is in force
connect_modes() {
    local np coll ops nps="2 3"
    [ "$QUICK" = 1 ] && nps=2   # the sanitizer pass: every collective once over oob
    for np in $nps; do
        for coll in $COLLS; do
            ops=
            case $coll in all_reduce|reduce_scatter) ops="-o sum,max" ;; esac
            # shellcheck disable=SC2086
            run_coll "$coll verbs np=$np --ib-connect oob qps=2" "$np" "$coll" -b 1000 -e 1M -f 32 --qps 2 \
                --slot-bytes 64K --ib-connect oob -d float,int32 $ops -n 1 -w 0 -c 2 -I 0 &&
                shows "$coll np=$np --ib-connect oob" 'connect="oob (--ib-connect oob)"' &&
                shows "$coll np=$np --ib-connect oob" 'tc="0 (GID default DSCP 0)"'
        done
    done
    run_coll "all_reduce verbs np=2 --ib-connect cm" 2 all_reduce -b 64K -e 64K --ib-connect cm -n 1 -w 0 -c 1 -I 0 &&
        shows "--ib-connect cm" 'connect="cm (--ib-connect cm)"'
    run_coll "all_reduce verbs np=2 --ib-connect auto on RoCE" 2 all_reduce -b 64K -e 64K -n 1 -w 0 -c 1 -I 0 &&
        shows "--ib-connect auto on RoCE" 'connect="oob (auto: RoCE)"'
    # the admin's default_roce_tos (rdma_cm's configfs) is what oob QPs get, --tc still wins
    local tos=/sys/kernel/config/rdma_cm/rxe0/ports/1/default_roce_tos
    case_ "default_roce_tos through configfs"
    if ! { mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config; } ||
        ! mkdir -p /sys/kernel/config/rdma_cm/rxe0 || ! echo 104 > "$tos"; then
        fail "default_roce_tos: cannot set it through configfs"
    else
        run_coll "all_reduce verbs np=2 --ib-connect oob, default_roce_tos 104" 2 all_reduce -b 64K -e 64K \
            --ib-connect oob -n 1 -w 0 -c 1 -I 0 &&
            shows "oob with default_roce_tos 104" 'tc="104 (default_roce_tos DSCP 26)"'
        run_coll "all_reduce verbs np=2 --ib-connect oob --tc 160, default_roce_tos 104" 2 all_reduce -b 64K \
            -e 64K --ib-connect oob --tc 160 -n 1 -w 0 -c 1 -I 0 &&
            shows "oob --tc 160 over default_roce_tos" 'tc="160 (--tc DSCP 40)"'
        echo 0 > "$tos"
        rmdir /sys/kernel/config/rdma_cm/rxe0 2> /dev/null
    fi
    # ranks that connect differently: refused, both ranks named
    local name="--ib-connect cm on rank 0, oob on rank 1"
    case_ "$name"
    timeout -k 5 120 mpirun --oversubscribe -np 1 "$CB" all_reduce -b 8 -e 8 -n 1 -w 0 --transport verbs \
        --hca "$HCA" -T 30 --ib-connect cm : -np 1 "$CB" all_reduce -b 8 -e 8 -n 1 -w 0 --transport verbs \
        --hca "$HCA" -T 30 --ib-connect oob > "$TMP/out" 2> "$TMP/err"
    local rc=$?
    if [ "$rc" = 0 ] || [ "$rc" = 124 ]; then
        fail "$name: exit $rc, expected a refusal"; tail -5 "$TMP/err"
    elif grep -q 'rank 0 (.*) connects with --ib-connect cm (--ib-connect cm) and rank 1 (.*) with oob' "$TMP/err" &&
        grep -q 'rank 1 (.*) connects with --ib-connect oob (--ib-connect oob) and rank 0 (.*) with cm' "$TMP/err"; then
        pass "$name: refused at both ends (exit $rc), both ranks named"
    else
        fail "$name: no message naming both ranks"; tail -5 "$TMP/err"
    fi
}

# All-to-all style connections (every pair) take their receive slots from
# one pool per rank, granted only for the messages a receive expects: every
# rank's registered buffers are exactly what `collbench model --scale`
# says (send FIFOs and clear-to-send entries per connection, the pool at
# its most slots in flight), below a FIFO per peer each way, and bit-exact.
shared_slots() {
    local np=4 algo coll name
    # the sanitizer pass runs the shared-slot paths in the contract suite and
    # its alltoall and direct collectives; this case checks figures, not C
    [ "$QUICK" = 1 ] && return
    "$ROOT/$BUILD/collbench" model --scale --transport verbs --ranks "$np" --slots 4 --slot-bytes 4096 --csv \
        > "$TMP/model.csv"
    for algo in pairwise linear direct; do
        coll=alltoall
        [ $algo = direct ] && coll=all_reduce
        name="$coll --algo $algo verbs np=$np: shared slots, buffers per rank = model"
        case_ "$name"
        expect_rc 0 "$name" mpi "$np" "$coll" --algo $algo -b 96000 -e 96000 --slot-bytes 4K --slots 4 -d int32 \
            -n 2 -w 1 -c 1 -I 0 --transport verbs --hca "$HCA" -T 60 -J "$TMP/shared.json" || { bad=1; continue; }
        no_wrong "$name" || continue
        if grep -q 'shared slot pool grows past' "$TMP/err"; then
            fail "$name: the pool grew inside the run: $(grep -m 1 'grows past' "$TMP/err")"
        elif ! python3 - "$TMP/shared.json" "$TMP/model.csv" "$algo" "$np" > "$TMP/why" <<'PY'
import csv, json, sys
path, model_csv, algo, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
want = int(next(r for r in csv.DictReader(open(model_csv)) if r["algorithm"] == algo)["buffer_bytes"])
got = [r["connections"]["buffer_bytes"] for r in json.load(open(path))["ranks"]]
fifo = 4 * 4096 + 4096   # one connection end's own slots and entries, page-rounded
if got != [want] * n:
    print(f"ranks report {got} B, the model {want} B")
    sys.exit(1)
if want >= 2 * (n - 1) * fifo:
    print(f"the model's {want} B is not below a FIFO per peer each way ({2 * (n - 1) * fifo} B)")
    sys.exit(1)
print(f"{want} B per rank, the model's (a FIFO per peer each way: {2 * (n - 1) * fifo} B)")
PY
        then
            fail "$name: $(cat "$TMP/why")"
        else
            pass "$name: $(cat "$TMP/why")"
        fi
    done
}

t_all=$SECONDS
echo "# inside: $(uname -r), $(nproc) vCPUs, build $BUILD, quick $QUICK"
if [ "$CASES" = data ]; then unit_exchanges; data_path_settings; split_data_settings; exit $bad; fi
if [ "$CASES" = connect ]; then connect_modes; exit $bad; fi
if [ "$CASES" = shared ]; then contract_tests; shared_slots; exit $bad; fi
unit_tests
t=$SECONDS; collectives; echo "# collectives: $((SECONDS - t)) s"
shared_slots
data_path_settings
split_data_settings
connect_modes
cli_errors
[ "$QUICK" = 1 ] || killed_rank "" ""
killed_rank --enable-recovery ", survivors on their own"
# the device still works: rxe not wedged by the dead ranks' QPs
run_coll "verbs works after the killed ranks" 2 all_reduce -b 64K -e 64K -n 1 -w 0 -c 1 -I 0
echo "# inside: $((SECONDS - t_all)) s"
exit $bad
