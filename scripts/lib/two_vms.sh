# shellcheck shell=bash
# Two Soft-RoCE VMs on two wires (scripts/rxe-vm -w), mpirun across them:
# the bed of tests/integration/verbs_two_vms.sh and scripts/bench-rails.
# Source it; the functions share the folder DIR, which both VMs see read-write:
# throwaway ssh keys, node b's "b-ready" once its ssh server runs, node a's
# "done" when it has finished (node b serves until then).
#   node a: 10.77.0.1 on eth0 (rxe0, also MPI's wire), 10.78.0.1 on eth1 (rxe1)
#   node b: 10.77.0.2 and 10.78.0.2, the same way: two rails.

# two_vms_tools: dropbear (the VMs' ssh server) and ssh-keygen, installed if
# missing; 1 (with the packages on stdout) when they still are not there.
two_vms_tools() {
    local need=()
    command -v dropbear > /dev/null || need+=(dropbear-bin)
    command -v ssh > /dev/null && command -v ssh-keygen > /dev/null || need+=(openssh-client)
    [ ${#need[@]} = 0 ] && return 0
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null 2>&1 ||
        { apt-get update -qq > /dev/null 2>&1; apt-get install -y -qq --no-install-recommends "${need[@]}" > /dev/null 2>&1; }
    command -v dropbear > /dev/null && command -v ssh-keygen > /dev/null && return 0
    echo "${need[*]}"
    return 1
}

# two_vms_keys DIR: a client key for node a's ssh, a host key for both servers.
two_vms_keys() {
    ssh-keygen -q -t ed25519 -N '' -f "$1/id" > /dev/null && dropbearkey -t ed25519 -f "$1/host_key" > /dev/null 2>&1
}

# two_vms_serve DIR NAME: inside a VM, an ssh server for mpirun's daemons.
two_vms_serve() {
    mkdir -p /root/.ssh && cp "$1/id.pub" /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
    dropbear -r "$1/host_key" -p 22 -s -E 2> "$1/dropbear-$2.log"
}

# two_vms_node_b DIR LIMIT: node b's whole life: serve until node a is done
# (at most LIMIT seconds), then print its rxe0 counters.
two_vms_node_b() {
    two_vms_serve "$1" b || { echo "node b: dropbear failed"; return 1; }
    touch "$1/b-ready"
    for _ in $(seq $(($2 * 10))); do [ -e "$1/done" ] && break; sleep 0.1; done
    echo "node b: rxe0 counters: $(rdma statistic show link rxe0/1 2>/dev/null | tr -s ' ' | cut -c1-400)"
}

# two_vms_node_a DIR WAIT: node a's start: serve, wait up to WAIT seconds for
# node b, and point mpirun's ssh at it. 3 when node b never got ready.
two_vms_node_a() {
    two_vms_serve "$1" a
    for _ in $(seq $(($2 * 10))); do [ -e "$1/b-ready" ] && break; sleep 0.1; done
    [ -e "$1/b-ready" ] || { echo "# node b not ready after $2 s"; touch "$1/done"; return 3; }
    export OMPI_MCA_plm_rsh_agent="ssh -i $1/id -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=20"
    export OMPI_MCA_btl_tcp_if_include=eth0 OMPI_MCA_oob_tcp_if_include=eth0
}

# two_vms_boot DIR LIMIT CMD_A CMD_B [RXE-VM-ARGS...]: node b in the
# background (output in DIR/b.log), then node a in the foreground (DIR/a.log,
# also on stdout); RXE-VM-ARGS go to both, the array TWO_VMS_A_ARGS to node a
# only. Sets TWO_VMS_ARC and TWO_VMS_BRC, the VMs' exit statuses.
two_vms_boot() {
    local dir=$1 limit=$2 cmd_a=$3 cmd_b=$4 bpid
    shift 4
    timeout -k 10 $((limit + 60)) scripts/rxe-vm -q -n nodeb -i 10.77.0.2/24 -w "$dir/b.sock:$dir/a.sock" \
        -i 10.78.0.2/24 -w "$dir/b1.sock:$dir/a1.sock" -H 10.77.0.1=nodea -t "$limit" -s "$dir" "$@" \
        "$cmd_b" > "$dir/b.log" 2>&1 &
    bpid=$!
    timeout -k 10 $((limit + 60)) scripts/rxe-vm -n nodea -i 10.77.0.1/24 -w "$dir/a.sock:$dir/b.sock" \
        -i 10.78.0.1/24 -w "$dir/a1.sock:$dir/b1.sock" -H 10.77.0.2=nodeb -t "$limit" -s "$dir" \
        "${TWO_VMS_A_ARGS[@]}" "$@" "$cmd_a" 2>&1 | tee "$dir/a.log"
    # shellcheck disable=SC2034  # results for the caller
    TWO_VMS_ARC=${PIPESTATUS[0]}
    touch "$dir/done"
    wait $bpid
    # shellcheck disable=SC2034
    TWO_VMS_BRC=$?
}

# two_vms_reason LOG: rxe-vm's last word on why a VM did not come up.
two_vms_reason() { grep '^rxe-vm\[' "$1" | grep -v 'console log tail' | tail -1 | sed 's/^rxe-vm\[[^]]*\]: //'; }
# two_vms_up LOG: whether that VM booted.
two_vms_up() { grep -q '^rxe-vm\[.*\]: up after' "$1"; }
