#!/bin/bash
# What counts as one host for shm: ranks that can map each other's memory
# (same kernel and the same IPC, network and PID namespaces). Two netns test
# hosts (scripts/netns-hosts) are one machine but not one host: `--transport
# auto` must pick the network between them, and `--transport shm` must be
# refused naming both ranks. Two ranks inside one netns host still share
# memory. Two ranks on each of two netns hosts: auto uses shm inside a host
# and tcp across (one job, two transports), every collective bit-exact; the
# rings are rail-local (each crossing joins the same local ranks). `collbench
# pairs` there goes rail by rail (local rank i against local rank i only) and
# names host and rail; hosts with 2 and 1 ranks are refused (exit 2). Hosts
# with 8 and 4 RDMA NICs (a topology file each, through mpirun's app
# contexts): the short host's header line says so (`rails=`), the other's not.
# Needs root; SKIP otherwise.
source "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" != 0 ]; then
    skip "hosts: network namespaces need root (running as uid $(id -u))"; exit 0
fi
export OMPI_MCA_rtc_hwloc_vmhole=none   # orted in a netns: see shared/netns/README.md
# MPI's own shared-memory BTL keys its segments by hostname, which every netns
# host shares: two hosts of two ranks trample each other's (a crash in vader)
export OMPI_MCA_btl=self,tcp
export CB_TEST_CB=$CB CB_TEST_TMP=$TMP CB_TEST_TOPO=$ROOT/tests/topo
# Three runs in one set of 2 hosts: auto across them, shm across them, auto inside one.
INNER='
run() { tag=$1; shift; timeout -k 5 120 mpirun "$@" < /dev/null > "$CB_TEST_TMP/$tag.out" 2> "$CB_TEST_TMP/$tag.err"; echo $? > "$CB_TEST_TMP/$tag.rc"; }
first=${CB_NETNS_HOSTS%%,*}
run across --host "$CB_NETNS_HOSTS" -np 2 "$CB_TEST_CB" all_reduce -b 1K -e 64K -f 8 -n 2 -w 1 -c 1 -T 30
run shm --host "$CB_NETNS_HOSTS" -np 2 "$CB_TEST_CB" all_reduce --transport shm -b 1K -e 1K -n 1 -T 30
run inside --host "$first:2" -np 2 "$CB_TEST_CB" all_reduce -b 1K -e 64K -f 8 -n 2 -w 1 -c 1 -T 30
two=$(echo "$CB_NETNS_HOSTS" | sed "s/,/:2,/; s/\$/:2/")
# each side chosen: INTRA+INTER
for t in tcp+tcp shm+tcp; do
    run "pair.$t" --host "$two" -np 4 "$CB_TEST_CB" all_reduce --transport "$t" -b 1000 -e 64K -f 8 -d float \
        -n 2 -w 1 -c 2 -T 30 -J "$CB_TEST_TMP/pair.$t.json"
done
for spec in "all_reduce ring" "all_reduce tree" "all_reduce direct" "all_gather ring" "reduce_scatter rd" \
            "alltoall pairwise" "broadcast ring" "reduce ring" "sendrecv ring"; do
    set -- $spec
    run "mixed.$1.$2" --host "$two" -np 4 "$CB_TEST_CB" "$1" --algo "$2" -b 1000 -e 200K -f 14 \
        --slot-bytes 16K --slots 4 -d float,int32 -n 2 -w 1 -c 2 -T 30 -r 3 -J "$CB_TEST_TMP/mixed.$1.$2.json"
done
# pairs rail by rail: local rank i of one host against local rank i of the other only;
# hosts with different rank counts refused
run pairs.rails --host "$two" -np 4 "$CB_TEST_CB" pairs --transport tcp -b 64K -n 4 -w 1 --lat-iters 20 \
    --max-spread 100 -T 30 -J "$CB_TEST_TMP/pairs.rails.json"
run pairs.uneven --host "$(echo "$CB_NETNS_HOSTS" | sed "s/,/:2,/; s/\$/:1/")" -np 3 "$CB_TEST_CB" pairs \
    --transport tcp -b 64K -n 2 -T 30
# two rail-local rings (channels), each crossing between the same local ranks
for coll in all_gather reduce_scatter all_reduce; do
    run "rails.$coll" --host "$two" -np 4 "$CB_TEST_CB" $coll --algo ring --channels 2 -b 1000 -e 200K -f 14 \
        --slot-bytes 16K --slots 4 -d float,int32 -n 2 -w 1 -c 2 -T 30 -J "$CB_TEST_TMP/rails.$coll.json"
done
# hosts placed over 8 and 4 NICs (each its own --topo-xml), and over 8 and 8
nics() { echo -np 1 --host "$1" "$CB_TEST_CB" all_reduce --topo-xml "$CB_TEST_TOPO/$2.xml" -b 1K -e 1K -n 1 -T 30; }
run nics.8-4 $(nics "$first" 2s8n) : $(nics "${CB_NETNS_HOSTS#*,}" 2s4n)
run nics.8-8 $(nics "$first" 2s8n) : $(nics "${CB_NETNS_HOSTS#*,}" 2s8n)
'
if ! timeout -k 10 600 "$ROOT/scripts/netns-hosts" run 2 -- bash -c "$INNER" > "$TMP/netns.log" 2>&1; then
    fail "hosts: netns-hosts could not run the set"; tail -5 "$TMP/netns.log"; exit 0
fi

transport_of() { sed -n 's/^# nranks .* transport \([a-z+]*\) .*/\1/p' "$TMP/$1.out" | head -1; }

name="auto between two netns hosts takes the network, not shm"
if [ "$(cat "$TMP/across.rc")" = 0 ] && grep -q '^# Out of bounds values : 0 OK' "$TMP/across.out" &&
   [ "$(transport_of across)" = tcp ]; then pass "$name"
else fail "$name: exit $(cat "$TMP/across.rc"), transport '$(transport_of across)'"; tail -3 "$TMP/across.err"; fi

# netns hosts have no RDMA device: a reason to take tcp, said once, not an error per rank
name="auto without RDMA ports: one info line names the rank and host, no error lines"
if grep -qE '^collbench\[rank 0@[^]]*\]: info: auto: rank 0 on [^ ]+ has no ACTIVE RDMA port: using tcp' "$TMP/across.err" &&
   ! grep -q 'error:' "$TMP/across.err" && [ "$(grep -c 'auto:' "$TMP/across.err")" = 1 ]; then pass "$name"
else fail "$name:$(grep -E 'error|auto' "$TMP/across.err" | head -4 | sed 's/^/ | /' | tr -d '\n')"; fi

name="--transport shm between two netns hosts is refused, naming both ranks"
if [ "$(cat "$TMP/shm.rc")" = 2 ] && grep -q 'rank 0 (host .*) and rank 1 (host .*) are in different namespaces' "$TMP/shm.err"; then
    pass "$name"
else fail "$name: exit $(cat "$TMP/shm.rc")"; tail -3 "$TMP/shm.err"; fi

name="auto inside one netns host takes shm"
if [ "$(cat "$TMP/inside.rc")" = 0 ] && grep -q '^# Out of bounds values : 0 OK' "$TMP/inside.out" &&
   [ "$(transport_of inside)" = shm ]; then pass "$name"
else fail "$name: exit $(cat "$TMP/inside.rc"), transport '$(transport_of inside)'"; tail -3 "$TMP/inside.err"; fi

# Two hosts of two ranks: ranks 0,1 on the first, 2,3 on the second.
for f in "$TMP"/mixed.*.rc "$TMP"/rails.*.rc; do
    tag=$(basename "$f" .rc); name="${tag#mixed.} over shm inside a host, tcp across (2 netns hosts x 2 ranks)"
    name=${name/./ --algo }
    if [ "$(cat "$f")" = 0 ] && grep -q '^# Out of bounds values : 0 OK' "$TMP/$tag.out" &&
       [ "$(transport_of "$tag")" = shm+tcp ]; then pass "$name"
    else fail "$name: exit $(cat "$f"), transport '$(transport_of "$tag")'"; tail -3 "$TMP/$tag.err"; fi
done
for t in tcp+tcp shm+tcp; do
    want=${t%+tcp}; want=${want/shm/shm+tcp}
    name="--transport $t on 2 netns hosts x 2 ranks: $want, bit-exact"
    if [ "$(cat "$TMP/pair.$t.rc")" = 0 ] && grep -q '^# Out of bounds values : 0 OK' "$TMP/pair.$t.out" &&
       [ "$(transport_of "pair.$t")" = "$want" ]; then pass "$name"
    else fail "$name: exit $(cat "$TMP/pair.$t.rc"), transport '$(transport_of "pair.$t")'"; tail -3 "$TMP/pair.$t.err"; fi
done
# rank_props NAME JSON PROP R0 R1 R2 R3: each rank's property PROP in the JSON is as given
rank_props() {
    local name=$1
    if python3 - "$2" "$3" "${@:4}" <<'PY'
import json, sys
path, prop, want = sys.argv[1], sys.argv[2], dict(enumerate(sys.argv[3:]))
got = {r["rank"]: r["props"].get(prop) for r in json.load(open(path))["ranks"]}
sys.exit(0 if got == want else f"{prop} {got}, want {want}")
PY
    then pass "$name"; else fail "$name"; fi
}
rank_props "the JSON says which peers each rank reaches over shm" "$TMP/mixed.all_reduce.ring.json" shm_peers 1 0 3 2
# Rail-local rings (src/core/ring_order.h): channel 0 goes 0 1 3 2 (host 1
# walked backwards), channel 1 starts each host at local rank 1: 1 0 2 3.
# Every crossing joins the same local rank (the same rail) on both hosts.
rank_props "rail-local rings: each channel crosses hosts between the same local ranks" \
    "$TMP/rails.all_gather.json" ring_next 1,2 3,0 0,3 2,1

# pairs on 2 netns hosts x 2 ranks (ranks 0, 1 on the first): rail by rail, rank 0 with
# rank 2 and rank 1 with rank 3, both rails at once; every endpoint named by host and rail
name="pairs on 2 netns hosts x 2 ranks: only same-rail pairs across hosts, JSON names host and rail"
if [ "$(cat "$TMP/pairs.rails.rc")" != 0 ]; then
    fail "$name: exit $(cat "$TMP/pairs.rails.rc")"; tail -3 "$TMP/pairs.rails.err"; grep -v '^#' "$TMP/pairs.rails.out" | head -3
elif why=$(python3 - "$TMP/pairs.rails.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
h = {x["rank"]: x for x in d["hosts"]}
got = sorted((p["a"], p["b"]) for p in d["pairs"])
ok = (d["ranks_per_host"] == 2 and d["nhosts"] == 2 and got == [(0, 2), (1, 3)] and
      [(h[r]["host_index"], h[r]["local_rank"]) for r in range(4)] == [(0, 0), (0, 1), (1, 0), (1, 1)] and
      h[0]["host"] != h[2]["host"] and all(x["rail"] not in ("", "-") for x in h.values()) and
      all(p["rail_a"] == h[p["a"]]["rail"] and p["host_b"] == h[p["b"]]["host"] for p in d["pairs"]))
sys.exit(0 if ok else f"pairs {got}, hosts {[(x['host'], x['host_index'], x['local_rank'], x['rail']) for x in h.values()]}")
PY
); then
    if grep -q '^# 2 hosts x 2 ranks: rail by rail' "$TMP/pairs.rails.out" &&
       grep -qE '^#  rank    3: .* local rank 1 rail [a-z0-9]+$' "$TMP/pairs.rails.out"; then
        pass "$name"
    else fail "$name: the header does not show the rails: $(grep -m 3 '^#  rank' "$TMP/pairs.rails.out" | tr '\n' ' ')"; fi
else fail "$name: $why"; fi
name="pairs on hosts with 2 and 1 ranks: refused (exit 2), naming each host's rank count"
if [ "$(cat "$TMP/pairs.uneven.rc")" = 2 ] &&
   grep -qE 'every host needs the same number of ranks; here: [^ ]+ 2 ranks, [^ ]+ 1 rank\.' "$TMP/pairs.uneven.err"; then
    pass "$name"
else fail "$name: exit $(cat "$TMP/pairs.uneven.rc"): $(grep -m 2 -i error "$TMP/pairs.uneven.err")"; fi

name="hosts with 8 and 4 RDMA NICs: the short host's header line names its count, the other's not"
if [ "$(cat "$TMP/nics.8-4.rc")" = 0 ] &&
   grep -qE '^#  Rank  1 .* rails="4 \(mlx5_0\.\.3\), most hosts 8"$' "$TMP/nics.8-4.out" &&
   grep -q '^#  Rank  0 ' "$TMP/nics.8-4.out" && ! grep -q '^#  Rank  0 .*rails=' "$TMP/nics.8-4.out" &&
   [ "$(cat "$TMP/nics.8-8.rc")" = 0 ] && grep -q '^#  Rank  1 ' "$TMP/nics.8-8.out" &&
   ! grep -q 'rails=' "$TMP/nics.8-8.out"; then
    pass "$name"
else fail "$name: exit $(cat "$TMP/nics.8-4.rc") and $(cat "$TMP/nics.8-8.rc"): $(grep '^#  Rank' "$TMP"/nics.8-*.out | tr '\n' ' ')"; fi
