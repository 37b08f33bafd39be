#!/bin/bash
# Faults the fabric teams fight, planted on 4 network namespaces of this
# machine (scripts/netns-hosts; no netem here: loss is an nftables random
# drop, slowness a rate limit or a cgroup CPU quota, flaps `ip link set
# down/up` on a host's bridge port). Each must be named, and nothing else:
#   a 2 s flap during pairs          -> pairs: link flap of that host
#   a 2 s flap during the collectives -> validate-rack: that host fails, drained
#   2 % loss on one host             -> pairs: lossy host
#   a host slow 1 s out of every 3   -> pairs: intermittent host
#   a CPU-throttled host             -> the table's slow column names its rank
#   a dead host (link down from the start) -> validate-rack names and drains
#                                       it in its pre-flight, under 2 minutes
#   300 idle connections to a rank's listener during set-up -> pairs still
#                                       succeeds (no pair fails)
#   a pair that cannot connect (its SYNs dropped) -> pairs reports that pair
#                                       failed and measures every other
# One run of each (the repeated scoring is scripts/bench-faults, which runs
# this file with CB_SWEEPS_ONLY="SCENARIO..." to pick some: flap_pairs
# flap_coll loss intermittent cpu dead flood, and clean: a clean set, every
# check above run on it, must name nothing; not in CI, where
# netns_faults.sh's clean set is). Needs root.
source "$(dirname "$0")/../lib.sh"

NETNS=$ROOT/scripts/netns-hosts
VALIDATE=$ROOT/scripts/validate-rack
N=4
# the launcher's own crash in namespaces (docs: /work/shared/netns): no shared topology segment
export OMPI_MCA_rtc_hwloc_vmhole=none
# pairs as the netns-tcp profile runs it; passes spread over > 3 s for faults that come and go
PAIRS=(--transport tcp -b 512K -n 6 -w 1 --lat-iters 100 --passes 3 --bw-factor 8 --lat-factor 50 --nsigma 0
       --max-spread 200 --max-retrans 0.5 -T 30)
SPREAD=(--transport tcp -b 1M -n 8 -w 1 --lat-iters 50 --passes 16 --pass-interval 0.25 --bw-factor 8 --lat-factor 50
        --nsigma 0 --max-spread 12 --max-retrans 0.5 -T 30)
ONLY=${CB_SWEEPS_ONLY:-flap_pairs flap_coll loss intermittent cpu dead flood failpair}
want() { [[ " $ONLY " == *" $1 "* ]]; }

if [ "$(id -u)" != 0 ]; then
    skip "sweeps: network namespaces need root (running as uid $(id -u))"; exit 0
fi
probe=cbprobe$$
if ! ip netns add "$probe" 2> "$TMP/probe.err"; then
    skip "sweeps: cannot create a network namespace: $(head -1 "$TMP/probe.err")"; exit 0
fi
ip netns del "$probe"
command -v nft > /dev/null || { fail "sweeps: nft missing (scripts/install-deps installs nftables)"; exit 0; }

# Two collectives are enough to put a flap inside one of them.
python3 - "$ROOT/results/profiles/netns-tcp.json" "$TMP/profile.json" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
p["collectives"]["names"] = ["all_reduce", "alltoall"]
p["collectives"].pop("min_busbw_GBps", None)   # this machine's noise; the floors are netns_faults.sh's
p["collectives"]["iters"] = 40                  # long enough to flap during one
json.dump(p, open(sys.argv[2], "w"))
EOF

# The steps, run inside a set: one line each, "KIND TAG ARGS...".
cat > "$TMP/inner.sh" <<'EOF'
ns_of() { awk -v i="$1" '$1 == i {print $3}' "$CB_NETNS_DIR/hosts"; }
# wait_rank HOST: until a collbench rank runs in HOST's namespace (the check has started)
wait_rank() {
    local ns pid
    ns=$(ns_of "$1")
    for _ in $(seq 600); do
        for pid in $(ip netns pids "$ns"); do
            [ "$(cat /proc/$pid/comm 2> /dev/null)" = collbench ] && return 0
        done
        sleep 0.1
    done
    return 1
}
listen_port() {   # HOST: the port of collbench's tcp transport in HOST's namespace (bound to the
    # host's address; MPI's own listeners in the same process are bound to 0.0.0.0)
    local addr
    addr=$(echo "$CB_NETNS_HOSTS" | cut -d, -f$(($1 + 1)))
    ip netns exec "$(ns_of "$1")" ss -Hltnp 2> /dev/null |
        awk -v a="$addr:" '/"collbench"/ && index($4, a) == 1 {print substr($4, length(a) + 1); exit}'
}
run_pairs() { timeout -k 5 300 mpirun --host "$CB_NETNS_HOSTS" -np "$CB_TEST_N" "$CB_TEST_CB" pairs "$@" < /dev/null; }
out() { echo "$CB_TEST_TMP/$1"; }
while read -r kind tag a1 a2 a3 rest; do
    [ -n "$kind" ] || continue
    o=$(out "$tag")
    case $kind in
    pairs) # pairs TAG ARGS...
        # shellcheck disable=SC2086
        run_pairs $a1 $a2 $a3 $rest -J "$o.json" > "$o.out" 2> "$o.err"; echo $? > "$o.rc" ;;
    pairs_flap) # pairs_flap TAG HOST SECONDS ARGS...: the flap once the ranks run
        # shellcheck disable=SC2086
        run_pairs $a3 $rest -J "$o.json" > "$o.out" 2> "$o.err" &
        job=$!
        wait_rank "$a1" && sleep 1.5 && "$CB_TEST_NETNS" flap "$CB_NETNS_DIR" "$a1" "$a2"
        wait $job; echo $? > "$o.rc" ;;
    pairs_flood) # pairs_flood TAG HOST COUNT ARGS...: COUNT idle connections to HOST's listener
        # shellcheck disable=SC2086
        run_pairs $a3 $rest -J "$o.json" > "$o.out" 2> "$o.err" &
        job=$!
        port=
        for _ in $(seq 600); do port=$(listen_port "$a1"); [ -n "$port" ] && break; sleep 0.05; done
        addr=$(echo "$CB_NETNS_HOSTS" | cut -d, -f$((a1 + 1)))
        python3 -c '
import socket, sys, time
socks = []
for _ in range(int(sys.argv[3])):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((sys.argv[1], int(sys.argv[2]))); socks.append(s)
    except OSError:
        s.close()
print(len(socks), flush=True)
time.sleep(float(sys.argv[4]))
' "$addr" "${port:-1}" "$a2" 20 > "$o.flood" 2>&1 &
        flood=$!
        wait $job; echo $? > "$o.rc"
        kill $flood 2> /dev/null; wait $flood 2> /dev/null
        echo "${port:-none}" > "$o.port" ;;
    pairs_block) # pairs_block TAG HOST PEER ARGS...: PEER cannot connect to HOST's listener
        # shellcheck disable=SC2086
        run_pairs $a3 $rest -J "$o.json" > "$o.out" 2> "$o.err" &
        job=$!
        port=
        for _ in $(seq 600); do port=$(listen_port "$a1"); [ -n "$port" ] && break; sleep 0.05; done
        peer=$(echo "$CB_NETNS_HOSTS" | cut -d, -f$((a2 + 1)))
        ip netns exec "$(ns_of "$a1")" nft -f - <<NFT
table inet cbblock {
    chain in { type filter hook input priority 0; ip saddr $peer tcp dport ${port:-1} drop; }
}
NFT
        wait $job; echo $? > "$o.rc" ;;
    coll) # coll TAG ARGS...
        # shellcheck disable=SC2086
        timeout -k 5 300 mpirun --host "$CB_NETNS_HOSTS" -np "$CB_TEST_N" "$CB_TEST_CB" $a1 $a2 $a3 $rest \
            < /dev/null > "$o.out" 2> "$o.err"; echo $? > "$o.rc" ;;
    validate) # validate TAG
        s=$SECONDS
        timeout -k 5 600 "$CB_TEST_VALIDATE" --hosts "$CB_NETNS_HOSTS" --profile "$CB_TEST_TMP/profile.json" \
            --collbench "$CB_TEST_CB" -o "$o.dir" < /dev/null > "$o.out" 2> "$o.err"
        echo $? > "$o.rc"; echo $((SECONDS - s)) > "$o.secs" ;;
    validate_flap) # validate_flap TAG STAGE HOST SECONDS: the flap once STAGE's ranks run
        # (not while MPI launches them: a flap then can hang OpenMPI's launcher)
        "$CB_TEST_VALIDATE" --hosts "$CB_NETNS_HOSTS" --profile "$CB_TEST_TMP/profile.json" \
            --collbench "$CB_TEST_CB" -o "$o.dir" < /dev/null > "$o.out" 2> "$o.err" &
        job=$!
        for _ in $(seq 1200); do grep -q "\] $a1 on .*: started" "$o.err" && break; sleep 0.1; done
        wait_rank "$a2" && sleep 0.3 && "$CB_TEST_NETNS" flap "$CB_NETNS_DIR" "$a2" "$a3"
        wait $job; echo $? > "$o.rc" ;;
    esac
done <<< "$CB_TEST_STEPS"
echo "$CB_NETNS_HOSTS" > "$CB_TEST_TMP/hosts"
EOF
export CB_TEST_CB=$CB CB_TEST_TMP=$TMP CB_TEST_VALIDATE=$VALIDATE CB_TEST_NETNS=$NETNS CB_TEST_N=$N

# run_set STEPS FAULT-ARGS...: one set of hosts with the faults, the steps inside it
run_set() {
    export CB_TEST_STEPS=$1; shift
    rm -f "$TMP/hosts"
    timeout -k 10 900 "$NETNS" run "$N" "$@" -- bash "$TMP/inner.sh" > "$TMP/set.out" 2> "$TMP/set.err"
    local rc=$?
    [ $rc = 0 ] || { fail "netns-hosts run $* exited $rc"; head -5 "$TMP/set.err"; }
}

addr_of() { cut -d, -f$(($1 + 1)) "$TMP/hosts"; }
rc_of() { cat "$TMP/$1.rc" 2> /dev/null || echo none; }

# pairs_named TAG: every line where pairs names something
pairs_named() {
    grep -E '^(slow|lossy|intermittent) (host|link):|^link flap:|^failed pair' "$TMP/$1.out"
}

# check_pairs_only TAG RANK PATTERN: exit 1; a line matching PATTERN names RANK; every named line is about RANK
check_pairs_only() {
    local tag=$1 r=$2 pattern=$3 name="pairs names $4 ($1)" named others
    named=$(pairs_named "$tag")
    others=$(echo "$named" | grep -vE "rank $r \(" )
    if [ "$(rc_of "$tag")" = 1 ] && echo "$named" | grep -E "$pattern" | grep -qF "rank $r (vm($(addr_of "$r")))" &&
        [ -z "$others" ]; then
        pass "$name: $(echo "$named" | grep -E "$pattern" | head -1 | cut -c1-110)"
        return
    fi
    fail "$name: exit $(rc_of "$tag"), named: ${named:-nothing}"
    grep -E '^#  +[0-9]+ |^# median' "$TMP/$tag.out" | head -12; grep -i error "$TMP/$tag.err" | head -5
}

# check_validate_drains TAG ADDR-INDEX PATTERN NAME: exit 1, exactly that host failed and drained
check_validate_drains() {
    local tag=$1 i=$2 pattern=$3 name=$4 fails addr
    addr=$(addr_of "$i")
    fails=$(grep -E '^FAIL ' "$TMP/$tag.out")
    if [ "$(rc_of "$tag")" = 1 ] && [ "$(echo "$fails" | wc -l)" = 1 ] && echo "$fails" | grep -qF "$addr" &&
        echo "$fails" | grep -qE "$pattern" && grep -qx "drain_hosts: $addr" "$TMP/$tag.out" &&
        grep -q "^scontrol update nodename=$addr state=drain reason=\"validate-rack: " "$TMP/$tag.out" &&
        [ "$(cat "$TMP/$tag.dir/drain_hosts" 2> /dev/null)" = "$addr" ]; then
        pass "$name: $(echo "$fails" | cut -c1-120)"
        return
    fi
    fail "$name: exit $(rc_of "$tag"), FAIL lines: ${fails:-none}"
    grep -E '^(drain|good)_hosts' "$TMP/$tag.out"; tail -5 "$TMP/$tag.err"
}

# check_slow_column TAG RANK: the table's slow column names RANK more often than any
# other rank. Not on every row: a rank is named when it enters an iteration late
# (throttled between the barrier and its start); a throttle that lands inside the
# collective stretches every rank's iteration alike and names nobody ("-"), and on a
# loaded machine another rank can be descheduled there too (CI runs: "- r1 -", "r2 r1 r1")
check_slow_column() {
    local tag=$1 want=r$2 slow rows hits other
    slow=$(grep -vE '^#|^$' "$TMP/$tag.out" | awk '{print $NF}')
    rows=$(echo "$slow" | grep -c .)
    hits=$(echo "$slow" | grep -cx "$want")
    other=$(echo "$slow" | grep -vx -e "$want" -e - | sort | uniq -c | sort -rn | awk 'NR == 1 {print $1 + 0}')
    if [ "$(rc_of "$tag")" = 0 ] && [ "$rows" -ge 3 ] && [ "$hits" -ge 1 ] && [ "$hits" -gt "${other:-0}" ]; then
        pass "slow column names the CPU-throttled rank $2 on $hits of $rows rows, more than any other"
    else
        fail "slow column: exit $(rc_of "$tag"), $want on $hits of $rows rows: $(echo $slow)"
    fi
}

# ---- flaps: during pairs (pairs names it), during the collectives (validate-rack) ----
if want flap_pairs; then
run_set "pairs_flap flap1 1 2 ${SPREAD[*]}"
check_pairs_only flap1 1 "^link flap: rank 1 \(.*\) eth0 carrier_changes [0-9]+ -> [0-9]+ \(\+2\) in pass" \
    "a 2 s flap of host 1"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); f=d["flaps"]
sys.exit(not (len(f) == 1 and f[0]["rank"] == 1 and f[0]["carrier_changes_after"] - f[0]["carrier_changes_before"] == 2
              and f[0]["to"] > f[0]["from"] and all(len(p["bw_passes_MBps"]) == 16 for p in d["pairs"])))' \
    "$TMP/flap1.json" 2> /dev/null; then pass "pairs JSON: the flap with its counter and time, every pass's figure"
else fail "pairs JSON: flap or passes missing"
fi
fi
if want flap_coll; then
run_set "validate_flap vflap2 all_reduce 2 2"
check_validate_drains vflap2 2 "link eth0 flapped during all_reduce: carrier_changes [0-9]+ -> [0-9]+ \(between" \
    "validate-rack: a 2 s flap of host 2 during all_reduce"
fi

# ---- 2 % loss on host 2; host 3 slow 1 s out of every 3 ----
if want loss; then
run_set "pairs loss2 ${PAIRS[*]}" --loss 2 2
check_pairs_only loss2 2 "^lossy host: rank 2 " "2 % loss on host 2"
fi
if want intermittent; then
run_set "pairs inter3 ${SPREAD[*]}" --intermittent 3 1 2 "rate 20mbit"
# A second of slowness in three may fall on the passes of one pair only: an
# intermittent link through host 3 names it too, as long as nothing else is named.
check_pairs_only inter3 3 "^intermittent (host: rank 3 |link: .*rank 3 \\()" "host 3 slow 1 s of every 3"
fi

# ---- a CPU-throttled host (2 % of a core: well below a fair share on a loaded machine) ----
if want cpu; then
run_set "coll cpu1 all_reduce --transport tcp -b 8 -e 512 -f 8 -n 20 -w 2 -I 1 -T 60" --cpu 1 2
check_slow_column cpu1 1
fi

# ---- a dead host: named and drained by the pre-flight, the rest validated, in under 2 minutes ----
if want dead; then
run_set "validate vdead" --down 3
secs=$(cat "$TMP/vdead.secs" 2> /dev/null || echo 9999)
check_validate_drains vdead 3 "pre-flight: no answer within" "validate-rack: dead host 3 (${secs} s)"
if [ "$secs" -lt 120 ] && grep -q "pre-flight: host $(addr_of 3): FAIL" "$TMP/vdead.err" &&
    grep -q "^good_hosts: $(addr_of 0),$(addr_of 1),$(addr_of 2)$" "$TMP/vdead.out" &&
    [ "$(grep -c '^PASS link' "$TMP/vdead.out")" = 3 ]; then
    pass "validate-rack: dead host: streamed, the other 3 validated, ${secs} s"
else
    fail "validate-rack: dead host: ${secs} s, or no progress line, or the others not validated"
    grep -E 'pre-flight|good_hosts' "$TMP/vdead.err" "$TMP/vdead.out" | head -8
fi
fi

# ---- an intruder holding 300 idle connections to host 1's listener during set-up ----
if want flood; then
run_set "pairs_flood flood1 1 300 ${SPREAD[*]}"
nflood=$(head -1 "$TMP/flood1.flood" 2> /dev/null)
if [[ $(rc_of flood1) =~ ^[01]$ ]] && [ "${nflood:-0}" -ge 256 ] &&
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
sys.exit(not (len(d["pairs"]) == 6 and all(p["failed"] is None for p in d["pairs"])))' "$TMP/flood1.json" 2> /dev/null; then
    pass "pairs with $nflood idle connections to rank 1's listener: every pair measured"
else
    fail "pairs flood: exit $(rc_of flood1), $nflood connections (port $(cat "$TMP/flood1.port" 2> /dev/null)), named: $(pairs_named flood1 | head -3)"
    grep -iE 'error|dropped' "$TMP/flood1.err" | head -5
fi
fi

# ---- a pair that cannot connect: reported, and the check goes on ----
if want failpair; then
run_set "pairs_block block12 1 2 --transport tcp -b 512K -n 6 -w 1 --lat-iters 100 --passes 3 --pass-interval 1 --bw-factor 8 --lat-factor 50 --nsigma 0 --max-spread 12 -T 8"
if [ "$(rc_of block12)" = 1 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
ok = {(p["a"], p["b"]): p["failed"] is None for p in d["pairs"]}
sys.exit(not (len(ok) == 6 and not ok[(1, 2)] and sum(ok.values()) == 5))' "$TMP/block12.json" 2> /dev/null &&
    grep -q "^slow link: rank 1 (.*) <-> rank 2 (.*): no data" "$TMP/block12.out"; then
    pass "pairs: the pair 1-2 that cannot connect is reported failed, the other 5 measured"
else
    fail "pairs with pair 1-2 blocked: exit $(rc_of block12), named: $(pairs_named block12 | head -3)"
    grep -iE 'error' "$TMP/block12.err" | head -5
fi
fi

# ---- a clean set: nothing named by any of the checks above (bench-faults) ----
if want clean; then
run_set "pairs clean_pairs ${SPREAD[*]}
coll clean_coll all_reduce --transport tcp -b 8 -e 512 -f 8 -n 20 -w 2 -I 1 -T 60
validate vclean"
named=$(pairs_named clean_pairs)
if [ "$(rc_of clean_pairs)" = 0 ] && [ -z "$named" ]; then pass "clean: pairs names nothing"
else fail "clean: pairs exit $(rc_of clean_pairs), named: ${named:-nothing}"; fi
if [ "$(rc_of vclean)" = 0 ] && ! grep -q '^FAIL' "$TMP/vclean.out" && grep -qx 'drain_hosts: ' "$TMP/vclean.out"; then
    pass "clean: validate-rack drains nothing"
else fail "clean: validate-rack exit $(rc_of vclean): $(grep '^FAIL' "$TMP/vclean.out" | head -3)"; fi
fi
