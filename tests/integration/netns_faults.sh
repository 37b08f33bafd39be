#!/bin/bash
# Planted faults on several hosts of this machine: 4 network namespaces on a
# private bridge (scripts/netns-hosts), collbench over tcp, mpirun across the
# namespaces. A clean set must name nothing (pairs 3 times, validate-rack
# twice); a host slowed by a rate limit on its veth, a link slowed by a rate
# limit filtered on the peer's address, and a host whose CPU is throttled
# (cgroup CFS quota) must be named exactly, by `collbench pairs` and by
# scripts/validate-rack. netns-hosts must leave nothing behind, also when it is
# killed. Needs root; SKIP otherwise. Thresholds are generous (8x below the
# median) and the faults strong (20 Mbit/s, ~5 MB/s both ways, against
# ~50-400 MB/s clean on a loaded 2-core VM).
source "$(dirname "$0")/../lib.sh"

NETNS=$ROOT/scripts/netns-hosts
VALIDATE=$ROOT/scripts/validate-rack
N=4
RATE="rate 20mbit"
PAIRS=(pairs --transport tcp -b 512K -n 6 -w 1 --lat-iters 100 --passes 3 --bw-factor 8 --lat-factor 50 --nsigma 0
       --max-spread 200 --max-retrans 0.5 -T 30)
export CB_TEST_CB=$CB CB_TEST_TMP=$TMP CB_TEST_VALIDATE=$VALIDATE CB_TEST_N=$N CB_TEST_NIGHTLY=$ROOT/scripts/nightly

# ---- user errors, no MPI and no root needed: exit 2 and one line saying what to do ----
one_line_error() {   # NAME TEXT CMD...
    local name=$1 text=$2; shift 2
    expect_rc 2 "$name" "$@" || return
    if [ "$(grep -c . "$TMP/err")" != 1 ] || ! grep -qF -- "$text" "$TMP/err"; then
        fail "$name: want one line with '$text'"; cat "$TMP/err"; return
    fi
    pass "$name"
}
printf '{"pairs": {"size": "1M", "bogus": 1}}\n' > "$TMP/bad-profile.json"
one_line_error "pairs -e" "give it with -b" "$CB" pairs -e 4M
one_line_error "pairs --passes 0" "--passes" "$CB" pairs --passes 0
one_line_error "pairs without mpirun" "mpirun" "$CB" pairs
one_line_error "validate-rack unknown profile" "cannot read profile" "$VALIDATE" --profile nosuch --hosts a,b
one_line_error "validate-rack unknown profile key" "unknown key 'pairs.bogus'" "$VALIDATE" --profile "$TMP/bad-profile.json" --hosts a,b
one_line_error "validate-rack one host" "at least 2" "$VALIDATE" --profile netns-tcp --hosts a
one_line_error "netns-hosts bad count" "number of hosts" "$NETNS" run x -- true

if [ "$(id -u)" != 0 ]; then
    skip "netns faults: network namespaces need root (running as uid $(id -u))"; exit 0
fi
probe=cbprobe$$
if ! ip netns add "$probe" 2> "$TMP/probe.err"; then
    skip "netns faults: cannot create a network namespace: $(head -1 "$TMP/probe.err")"; exit 0
fi
ip netns del "$probe"

# The command each set runs: "pairs TAG", "validate TAG [ARGS]" or "nightly TAG" steps,
# from $CB_TEST_STEPS. nightly: its pairs step with the options above, one small all_reduce.
INNER='
echo "$CB_NETNS_HOSTS" > "$CB_TEST_TMP/hosts"
{ echo "$CB_NETNS_DIR"; awk "{print \$3}" "$CB_NETNS_DIR/hosts"; sed -n "s/^bridge=//p" "$CB_NETNS_DIR/meta"; } > "$CB_TEST_TMP/names"
while read -r kind tag args; do
    [ -n "$kind" ] || continue
    if [ "$kind" = pairs ]; then
        timeout -k 5 300 mpirun --host "$CB_NETNS_HOSTS" -np "$CB_TEST_N" "$CB_TEST_CB" "$@" \
            < /dev/null > "$CB_TEST_TMP/$tag.out" 2> "$CB_TEST_TMP/$tag.err"
    elif [ "$kind" = nightly ]; then
        python3 -c "import json, sys; h, out, cb, n = sys.argv[1:5]; print(json.dumps({
            \"history_dir\": out + \".history\", \"textfile\": out + \".prom\", \"collbench\": cb,
            \"mpirun\": [\"mpirun\", \"--host\", h, \"-np\", n], \"collectives\": [\"all_reduce\"],
            \"sizes\": {\"min\": \"8\", \"max\": \"64K\", \"factor\": 64},
            \"collbench_args\": [\"--transport\", \"tcp\", \"-n\", \"5\", \"-w\", \"1\", \"-T\", \"60\"],
            \"pairs\": {\"args\": sys.argv[6:], \"timeout_s\": 240}}))" \
            "$CB_NETNS_HOSTS" "$CB_TEST_TMP/$tag" "$CB_TEST_CB" "$CB_TEST_N" "$@" > "$CB_TEST_TMP/$tag.json"
        timeout -k 5 600 "$CB_TEST_NIGHTLY" -C "$CB_TEST_TMP/$tag.json" \
            < /dev/null > "$CB_TEST_TMP/$tag.out" 2> "$CB_TEST_TMP/$tag.err"
    else
        # shellcheck disable=SC2086
        timeout -k 5 600 "$CB_TEST_VALIDATE" --hosts "$CB_NETNS_HOSTS" --profile netns-tcp \
            --collbench "$CB_TEST_CB" -o "$CB_TEST_TMP/$tag.dir" $args \
            < /dev/null > "$CB_TEST_TMP/$tag.out" 2> "$CB_TEST_TMP/$tag.err"
    fi
    echo $? > "$CB_TEST_TMP/$tag.rc"
done <<< "$CB_TEST_STEPS"'

# run_set STEPS FAULT-ARGS...: one set of hosts with the faults, the steps inside it
run_set() {
    export CB_TEST_STEPS=$1; shift
    rm -f "$TMP"/*.rc "$TMP/names" "$TMP/hosts"
    timeout -k 10 1200 "$NETNS" run "$N" "$@" -- bash -c "$INNER" _ "${PAIRS[@]}" > "$TMP/set.out" 2> "$TMP/set.err"
    local rc=$?
    [ $rc = 0 ] || { fail "netns-hosts run $* exited $rc"; head -5 "$TMP/set.err"; }
    left_behind
}

# left_behind: the last set's folder, namespaces and bridge are gone
left_behind() {
    local name left=
    [ -s "$TMP/names" ] || return 0
    [ -d "$(head -1 "$TMP/names")" ] && left="$left folder"
    for name in $(tail -n +2 "$TMP/names"); do
        ip netns list | grep -qw "$name" && left="$left netns $name"
        ip link show "$name" > /dev/null 2>&1 && left="$left link $name"
    done
    [ -z "$left" ] || fail "netns-hosts left behind:$left"
}

addr_of() { cut -d, -f$(($1 + 1)) "$TMP/hosts"; }

# check_pairs TAG EXPECT: EXPECT "none", "host R" or "link A B": exactly that is named (a
# rate limit also drops packets: the same host or link may be named lossy or intermittent too)
check_pairs() {
    local tag=$1 want=$2 name="pairs $2 ($1)" rc named others
    rc=$(cat "$TMP/$tag.rc" 2> /dev/null || echo none)
    named=$(grep -E '^(slow|lossy|intermittent) (host|link):|^link flap:' "$TMP/$tag.out")
    case $want in
        none) if [ "$rc" = 0 ] && [ -z "$named" ] && grep -q '^no outliers$' "$TMP/$tag.out"; then pass "$name"; return; fi ;;
        host*) set -- $want
            others=$(echo "$named" | grep -vF "rank $2 (vm($(addr_of "$2")))")
            if [ "$rc" = 1 ] && [ -z "$others" ] && [ "$(echo "$named" | grep -c '^slow')" = 1 ] &&
                echo "$named" | grep -qF "slow host: rank $2 (vm($(addr_of "$2"))"; then pass "$name"; return; fi
            named=${named:-nothing} ;;
        link*) set -- $want
            others=$(echo "$named" | grep -vF "rank $2 (vm($(addr_of "$2"))) <-> rank $3 (vm($(addr_of "$3")))")
            if [ "$rc" = 1 ] && [ -z "$others" ] && [ "$(echo "$named" | grep -c '^slow')" = 1 ] &&
                echo "$named" | grep -qF "slow link: rank $2 (vm($(addr_of "$2"))) <-> rank $3 (vm($(addr_of "$3")))"; then
                pass "$name"; return; fi
            named=${named:-nothing} ;;
    esac
    fail "$name: exit $rc, named: ${named:-nothing}"
    grep -E '^#  +[0-9]+ |^# median' "$TMP/$tag.out" | head -12; grep -i error "$TMP/$tag.err" | head -5
}

# check_validate TAG EXPECT: exit status, exactly the expected FAIL line(s), report.json
check_validate() {
    local tag=$1 want=$2 name="validate-rack $2 ($1)" rc fails
    rc=$(cat "$TMP/$tag.rc" 2> /dev/null || echo none)
    fails=$(grep -E '^FAIL ' "$TMP/$tag.out")
    if [ ! -s "$TMP/$tag.dir/report.json" ]; then fail "$name: no report.json"; tail -5 "$TMP/$tag.err"; return; fi
    case $want in
        none) [ "$rc" = 0 ] && [ -z "$fails" ] && grep -q '^validate-rack: PASS' "$TMP/$tag.out" && { pass "$name"; return; } ;;
        host*) set -- $want
            [ "$rc" = 1 ] && [ "$(echo "$fails" | wc -l)" = 1 ] &&
                echo "$fails" | grep -qF "FAIL host rank $2 vm($(addr_of "$2")):" && { pass "$name"; return; } ;;
        link*) set -- $want
            [ "$rc" = 1 ] && [ "$(echo "$fails" | wc -l)" = 1 ] &&
                echo "$fails" | grep -qF "FAIL link rank $2 vm($(addr_of "$2")) <-> rank $3 vm($(addr_of "$3")):" &&
                { pass "$name"; return; } ;;
    esac
    fail "$name: exit $rc, FAIL lines: ${fails:-none}"
    grep -vE '^PASS ' "$TMP/$tag.out" | head -8; grep -i error "$TMP/$tag.err" | head -3
    tail -5 "$TMP/$tag.dir/pairs.err" 2> /dev/null
}

# check_nightly TAG EXPECT: EXPECT "none" or "host R": nightly's exit status, and the
# textfile's pairs flags name exactly that host (slow, maybe lossy or intermittent too)
check_nightly() {
    local tag=$1 want=$2 name="nightly's pairs step: $2 ($1)" rc flagged
    rc=$(cat "$TMP/$tag.rc" 2> /dev/null || echo none)
    flagged=$(grep -E '^collbench_pairs_(host|link)_flagged\{.*\} 1$' "$TMP/$tag.prom" 2> /dev/null)
    case $want in
        none) [ "$rc" = 0 ] && [ -z "$flagged" ] &&
                grep -qx 'collbench_pairs_status{status="ok"} 1' "$TMP/$tag.prom" && { pass "$name"; return; } ;;
        host*) set -- $want
            [ "$rc" = 1 ] && [ -z "$(echo "$flagged" | grep -vF "{host=\"vm($(addr_of "$2"))\",kind=")" ] &&
                echo "$flagged" | grep -qxF "collbench_pairs_host_flagged{host=\"vm($(addr_of "$2"))\",kind=\"slow\"} 1" &&
                grep -q "PAIRS FAULT host vm($(addr_of "$2")): slow" "$TMP/$tag.err" && { pass "$name"; return; } ;;
    esac
    fail "$name: exit $rc, flagged: ${flagged:-nothing}"; grep -E 'PAIRS|nightly: [0-9]' "$TMP/$tag.err" | head -5
}

# ---- a clean set names nothing ----
run_set "pairs clean1
pairs clean2
pairs clean3
validate vclean1
validate vclean2
nightly nclean"
for t in clean1 clean2 clean3; do check_pairs $t none; done
check_nightly nclean none
for t in vclean1 vclean2; do check_validate $t none; done
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(d["status"] != "PASS" or len(d["links"]) != 6)' \
    "$TMP/vclean1.dir/report.json"; then pass "validate-rack report.json: PASS, 6 links"
else fail "validate-rack report.json: not PASS with 6 links"; fi

# ---- one slow host: every path through host 2 limited ----
run_set "pairs host2
validate vhost2 --skip-collectives
nightly nhost2" --netem 2 "$RATE"
check_pairs host2 "host 2"
check_nightly nhost2 "host 2"
check_validate vhost2 "host 2"

# ---- one slow link: only 0 <-> 3, both directions ----
run_set "pairs link03
validate vlink03 --skip-collectives" --netem-link 0 3 "$RATE"
check_pairs link03 "link 0 3"
check_validate vlink03 "link 0 3"

# ---- one host's CPU throttled to 2 % of a core (its pairs ~15 MB/s) ----
run_set "pairs cpu1" --cpu 1 2
check_pairs cpu1 "host 1"

# ---- latency only: a delayed link (needs netem in the kernel) ----
if zcat /proc/config.gz 2> /dev/null | grep -q '^CONFIG_NET_SCH_NETEM=[ym]' || modprobe -q sch_netem 2> /dev/null; then
    run_set "pairs delay12" --netem-link 1 2 "delay 5ms"
    check_pairs delay12 "link 1 2"
else
    skip "pairs names a delayed link: this kernel has no netem (CONFIG_NET_SCH_NETEM), only rate limits can be planted"
fi

# ---- netns-hosts cleans up when killed, and on a failing command ----
"$NETNS" run 2 -- bash -c 'echo "$CB_NETNS_DIR" > "$0"; sleep 120' "$TMP/killdir" > /dev/null 2>&1 &
job=$!
for _ in $(seq 100); do [ -s "$TMP/killdir" ] && break; sleep 0.1; done
kill -TERM "$job"
t0=$SECONDS; wait "$job"; rc=$?
dir=$(cat "$TMP/killdir" 2> /dev/null)
if [ -z "$dir" ]; then fail "netns-hosts killed: the set never came up"
elif [ -d "$dir" ] || [ "$rc" != 143 ]; then fail "netns-hosts killed: exit $rc, folder left: $([ -d "$dir" ] && echo yes || echo no)"
else pass "netns-hosts killed: exit 143 in $((SECONDS - t0)) s, nothing left"; fi

"$NETNS" run 2 -- bash -c 'echo "$CB_NETNS_DIR" > "$0"; exit 7' "$TMP/faildir" > /dev/null 2>&1
rc=$?
if [ "$rc" = 7 ] && [ ! -d "$(cat "$TMP/faildir")" ]; then pass "netns-hosts: the command's exit status, nothing left"
else fail "netns-hosts failing command: exit $rc (want 7) or folder left"; fi

expect_rc 2 "netns-hosts bad fault" "$NETNS" run 2 --netem 9 "$RATE" -- true &&
    grep -q "no host '9'" "$TMP/err" && pass "netns-hosts bad fault: exit 2 naming the host"
