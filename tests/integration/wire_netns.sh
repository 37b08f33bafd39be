#!/bin/bash
# The wire counters over tcp between two hosts: two network namespaces on a
# private bridge (scripts/netns-hosts), one rank each, 5 % of host 1's
# packets dropped at random (netns-hosts --loss). The run's results stay
# bit-exact; the footer's "# wire:" line and the JSON's "wire" name the
# TCP retransmissions the loss made needed (host 0 resends what host 1's
# input dropped: not D-SACKed, so they count); with --fail-on-wire-errors
# the run exits 3 naming them. Needs root; SKIP otherwise.
source "$(dirname "$0")/../lib.sh"

NETNS=$ROOT/scripts/netns-hosts
RUN=(all_reduce --transport tcp -b 1M -e 1M -n 4 -w 1 -c 2 -I 0 -T 60)

if [ "$(id -u)" != 0 ]; then
    skip "wire over tcp: network namespaces need root (running as uid $(id -u))"; exit 0
fi
if ! command -v nft > /dev/null; then
    skip "wire over tcp: nft (nftables) is missing: scripts/install-deps installs it"; exit 0
fi

# Inside the set (host 1 lossy): run twice, keep the outputs.
INNER='
for tag in plain strict; do
    extra=; [ $tag = strict ] && extra=--fail-on-wire-errors
    timeout -k 5 300 mpirun --host "$CB_NETNS_HOSTS" -np 2 -x ASAN_OPTIONS -x UBSAN_OPTIONS "$CB_TEST_CB" "$@" \
        -J "$CB_TEST_TMP/$tag.json" $extra < /dev/null > "$CB_TEST_TMP/$tag.out" 2> "$CB_TEST_TMP/$tag.err"
    echo $? > "$CB_TEST_TMP/$tag.rc"
done'
export CB_TEST_CB=$CB CB_TEST_TMP=$TMP
timeout -k 10 900 "$NETNS" run 2 --loss 1 5 -- bash -c "$INNER" _ "${RUN[@]}" > "$TMP/set.out" 2> "$TMP/set.err"
rc=$?
if [ "$rc" != 0 ]; then
    fail "wire over tcp: netns-hosts run exited $rc"; tail -5 "$TMP/set.err"; exit 1
fi

# check TAG WANT-RC NAME [STDERR-PATTERN]
check() {
    local tag=$1 want=$2 name=$3 pattern=${4:-} rc line
    rc=$(cat "$TMP/$tag.rc" 2> /dev/null || echo none)
    cp "$TMP/$tag.out" "$TMP/out"; cp "$TMP/$tag.err" "$TMP/err"
    line=$(grep '^# wire: ' "$TMP/out")
    if [ "$rc" != "$want" ]; then
        # collbench's own lines first: mpirun's boxes at the end can hide which rank failed how
        fail "$name: exit $rc, expected $want"; grep -m 5 '^collbench' "$TMP/err"; tail -8 "$TMP/err"
        tail -3 "$TMP/out"; return 1
    fi
    no_wrong "$name" || return 1
    if ! echo "$line" | grep -qE 'host vm\([0-9.]+\) .*tcp RetransSegs \+[1-9]'; then
        fail "$name: the footer names no TCP retransmission: ${line:-no '# wire:' line}"; return 1
    fi
    if ! python3 - "$TMP/$tag.json" << 'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
moved = [c for w in d["wire"] for c in w["counters"] if c["link"] == "tcp" and c["counter"] == "RetransSegs"]
sys.exit(not (len(d["wire"]) == 2 and moved and all(c["delta"] > 0 and c["kind"] == "error" for c in moved)))
EOF
    then
        fail "$name: the JSON's wire has no RetransSegs > 0: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("wire"))' "$TMP/$tag.json" 2>&1 | cut -c1-300)"
        return 1
    fi
    if [ -n "$pattern" ] && ! grep -q -- "$pattern" "$TMP/err"; then
        fail "$name: stderr does not say '$pattern': $(grep -m1 wire "$TMP/err")"; return 1
    fi
    pass "$name: ${line#\# wire: }"
}

check plain 0 "wire over tcp, 5% loss: bit-exact, retransmissions in the footer and the JSON"
check strict 3 "wire over tcp, 5% loss, --fail-on-wire-errors: exit 3" \
    '--fail-on-wire-errors: the wire moved during the run: host vm(.*tcp RetransSegs'
