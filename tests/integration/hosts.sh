#!/bin/bash
# What counts as one host for shm: ranks that can map each other's memory
# (same kernel and the same IPC, network and PID namespaces). Two netns test
# hosts (scripts/netns-hosts) are one machine but not one host: `--transport
# auto` must pick the network between them, and `--transport shm` must be
# refused naming both ranks. Two ranks inside one netns host still share
# memory. Needs root; SKIP otherwise.
source "$(dirname "$0")/../lib.sh"

if [ "$(id -u)" != 0 ]; then
    skip "hosts: network namespaces need root (running as uid $(id -u))"; exit 0
fi
export OMPI_MCA_rtc_hwloc_vmhole=none   # orted in a netns: see shared/netns/README.md
export CB_TEST_CB=$CB CB_TEST_TMP=$TMP
# Three runs in one set of 2 hosts: auto across them, shm across them, auto inside one.
INNER='
run() { tag=$1; shift; timeout -k 5 120 mpirun "$@" < /dev/null > "$CB_TEST_TMP/$tag.out" 2> "$CB_TEST_TMP/$tag.err"; echo $? > "$CB_TEST_TMP/$tag.rc"; }
first=${CB_NETNS_HOSTS%%,*}
run across --host "$CB_NETNS_HOSTS" -np 2 "$CB_TEST_CB" all_reduce -b 1K -e 64K -f 8 -n 2 -w 1 -c 1 -T 30
run shm --host "$CB_NETNS_HOSTS" -np 2 "$CB_TEST_CB" all_reduce --transport shm -b 1K -e 1K -n 1 -T 30
run inside --host "$first:2" -np 2 "$CB_TEST_CB" all_reduce -b 1K -e 64K -f 8 -n 2 -w 1 -c 1 -T 30
'
if ! timeout -k 10 600 "$ROOT/scripts/netns-hosts" run 2 -- bash -c "$INNER" > "$TMP/netns.log" 2>&1; then
    fail "hosts: netns-hosts could not run the set"; tail -5 "$TMP/netns.log"; exit 0
fi

transport_of() { sed -n 's/.*transport \([a-z]*\) .*/\1/p' "$TMP/$1.out" | head -1; }

name="auto between two netns hosts takes the network, not shm"
if [ "$(cat "$TMP/across.rc")" = 0 ] && grep -q '^# Out of bounds values : 0 OK' "$TMP/across.out" &&
   [ "$(transport_of across)" = tcp ]; then pass "$name"
else fail "$name: exit $(cat "$TMP/across.rc"), transport '$(transport_of across)'"; tail -3 "$TMP/across.err"; fi

name="--transport shm between two netns hosts is refused, naming both ranks"
if [ "$(cat "$TMP/shm.rc")" = 2 ] && grep -q 'rank 0 (host .*) and rank 1 (host .*) are in different namespaces' "$TMP/shm.err"; then
    pass "$name"
else fail "$name: exit $(cat "$TMP/shm.rc")"; tail -3 "$TMP/shm.err"; fi

name="auto inside one netns host takes shm"
if [ "$(cat "$TMP/inside.rc")" = 0 ] && grep -q '^# Out of bounds values : 0 OK' "$TMP/inside.out" &&
   [ "$(transport_of inside)" = shm ]; then pass "$name"
else fail "$name: exit $(cat "$TMP/inside.rc"), transport '$(transport_of inside)'"; tail -3 "$TMP/inside.err"; fi
