#!/bin/bash
# `collbench topo` on synthetic machines (tests/topo/, see make-topos.sh):
# 2 sockets x 4 cores with 2 RDMA NICs per socket, the same without I/O, and
# a DGX-like 2 sockets x 8 cores with 4 RDMA NICs (and GPUs) per socket.
# The map, the placement rules and the two warnings, without MPI.
source "$(dirname "$0")/../lib.sh"
X2S4N=$ROOT/tests/topo/2s4n.xml
X2S8N=$ROOT/tests/topo/2s8n.xml
X2S0N=$ROOT/tests/topo/2s0n.xml

# topo NAME WANT_RC ARGS... : run collbench topo, output in $TMP/out and $TMP/err
topo() {
    local name=$1 want=$2; shift 2
    expect_rc "$want" "$name" "$CB" topo "$@" || return 1
    if grep -qiE 'segmentation|sanitizer|core dumped' "$TMP/err"; then
        fail "$name: crashed"; head -5 "$TMP/err"; return 1
    fi
}

# has NAME FILE TEXT... : every TEXT is a line (fixed string) of FILE
has() {
    local name=$1 file=$2; shift 2
    for text in "$@"; do
        if ! grep -qxF -- "$text" "$file"; then
            fail "$name: no line '$text'"; head -30 "$file"; return 1
        fi
    done
}

no_warning() {
    if grep -q 'warning' "$TMP/err"; then fail "$1: unexpected warning"; head -3 "$TMP/err"; return 1; fi
}

if topo "4 ranks: map" 0 --topo-xml "$X2S4N" --local-size 4 &&
   has "4 ranks: map" "$TMP/out" \
    "# Topology of $X2S4N (host 2s4n): 2 package(s), 2 NUMA node(s), 8 core(s), 8 cpu(s)" \
    "#   NUMA 0: package 0, cpus 0-3" \
    "#   NUMA 1: package 1, cpus 4-7" \
    "#   NIC mlx5_0 (ib0, 0000:11:00.0): package 0, NUMA 0, cpus 0-3, port 1 ACTIVE" \
    "#   NIC mlx5_1 (ib1, 0000:14:00.0): package 0, NUMA 0, cpus 0-3, port 1 ACTIVE" \
    "#   NIC mlx5_2 (ib2, 0000:81:00.0): package 1, NUMA 1, cpus 4-7, port 1 ACTIVE" \
    "#   NIC mlx5_3 (ib3, 0000:84:00.0): package 1, NUMA 1, cpus 4-7, port 1 ACTIVE" \
    "#   Ethernet eno1 (0000:10:1f.6): package 0, NUMA 0, cpus 0-3, no RDMA" \
    "#   GPU cuda0/nvml0 (0000:12:00.0): package 0, NUMA 0, cpus 0-3, nearest NIC mlx5_0 (pci-switch)" \
    "#   GPU cuda1/nvml1 (0000:82:00.0): package 1, NUMA 1, cpus 4-7, nearest NIC mlx5_2 (pci-switch)"; then
    pass "4 ranks: map of sockets, NICs and GPUs"
fi

if topo "4 ranks: placement" 0 --topo-xml "$X2S4N" --local-size 4 &&
   has "4 ranks: placement" "$TMP/out" \
    "# Placement of 4 local rank(s): bind=core (default: one core per rank)" \
    "#   local rank 0 on 2s4n: cpus=0 numa=0 nic=mlx5_0:1 dist=numa" \
    "#   local rank 1 on 2s4n: cpus=1 numa=0 nic=mlx5_1:1 dist=numa" \
    "#   local rank 2 on 2s4n: cpus=4 numa=1 nic=mlx5_2:1 dist=numa" \
    "#   local rank 3 on 2s4n: cpus=5 numa=1 nic=mlx5_3:1 dist=numa" &&
   no_warning "4 ranks: placement"; then
    pass "4 ranks: one NIC each, on the NIC's socket, no warning"
fi

if topo "8 ranks" 0 --topo-xml "$X2S4N" --local-size 8 &&
   has "8 ranks" "$TMP/out" \
    "#   local rank 1 on 2s4n: cpus=1 numa=0 nic=mlx5_0:1 dist=numa" \
    "#   local rank 3 on 2s4n: cpus=3 numa=0 nic=mlx5_1:1 dist=numa" \
    "#   local rank 4 on 2s4n: cpus=4 numa=1 nic=mlx5_2:1 dist=numa" \
    "#   local rank 7 on 2s4n: cpus=7 numa=1 nic=mlx5_3:1 dist=numa" &&
   no_warning "8 ranks"; then
    pass "8 ranks: two per NIC, no warning"
fi

# a rail map that leaves NICs idle: said once for the host, with the fix; nothing when all are used
name="2 ranks on 4 NICs: the idle NICs named with the fix"
if topo "$name" 0 --topo-xml "$X2S4N" --local-size 2 &&
   has "$name" "$TMP/out" "#   Idle: RDMA NICs mlx5_1:1, mlx5_3:1 carry no traffic: the host's 2 ranks use mlx5_0:1, mlx5_2:1 of its 4: start one rank per NIC (\`mpirun --map-by ppr:4:node\`)"; then
    if [ "$(grep -c 'carry no traffic' "$TMP/out")" = 1 ]; then pass "$name"; else fail "$name: said more than once"; fi
fi
name="one rank striping over 4 NICs with 4 channels, and 4 ranks: no idle NIC"
if topo "$name" 0 --topo-xml "$X2S4N" --local-size 4 && ! grep -q 'Idle' "$TMP/out" &&
   topo "$name" 0 --topo-xml "$X2S4N" --local-size 1 --hca mlx5_0,mlx5_1,mlx5_2,mlx5_3 --channels 4; then
    if grep -q 'Idle' "$TMP/out"; then fail "$name: $(grep Idle "$TMP/out")"; else pass "$name"; fi
fi

# 8 NICs, 4 per socket: one rank per NIC on its socket; half the ranks leave half the NICs idle
name="8 NICs, 8 ranks: one NIC each, on its socket, no warning"
if topo "$name" 0 --topo-xml "$X2S8N" --local-size 8 &&
   has "$name" "$TMP/out" \
    "#   NIC mlx5_7 (ib7, 0000:87:00.0): package 1, NUMA 1, cpus 8-15, port 1 ACTIVE" \
    "#   GPU cuda5/nvml5 (0000:84:00.0): package 1, NUMA 1, cpus 8-15, nearest NIC mlx5_5 (pci-switch)" \
    "#   local rank 0 on 2s8n: cpus=0 numa=0 nic=mlx5_0:1 dist=numa" \
    "#   local rank 3 on 2s8n: cpus=3 numa=0 nic=mlx5_3:1 dist=numa" \
    "#   local rank 4 on 2s8n: cpus=8 numa=1 nic=mlx5_4:1 dist=numa" \
    "#   local rank 7 on 2s8n: cpus=11 numa=1 nic=mlx5_7:1 dist=numa" &&
   no_warning "$name"; then
    if grep -q 'Idle' "$TMP/out"; then fail "$name: $(grep Idle "$TMP/out")"; else pass "$name"; fi
fi
name="8 NICs, 4 ranks: the 4 idle NICs named with the fix"
if topo "$name" 0 --topo-xml "$X2S8N" --local-size 4 &&
   has "$name" "$TMP/out" "#   Idle: RDMA NICs mlx5_1:1, mlx5_3:1, mlx5_5:1, mlx5_7:1 carry no traffic: the host's 4 ranks use mlx5_0:1, mlx5_2:1, mlx5_4:1, mlx5_6:1 of its 8: start one rank per NIC (\`mpirun --map-by ppr:8:node\`)"; then
    pass "$name"
fi

if topo "numa binding" 0 --topo-xml "$X2S4N" --local-size 4 --bind numa &&
   has "numa binding" "$TMP/out" "#   local rank 2 on 2s4n: cpus=4-7 numa=1 nic=mlx5_2:1 dist=numa"; then
    pass "--bind numa: the NIC's NUMA node"
fi

if topo "remote socket" 0 --topo-xml "$X2S4N" --local-size 2 --cpus 0-3 --hca mlx5_2,mlx5_3 &&
   has "remote socket" "$TMP/out" "#   local rank 0 on 2s4n: cpus=0-3 numa=0 nic=mlx5_2:1 dist=cross-socket"; then
    if grep -q "local rank 1 on 2s4n: NIC mlx5_3 is on package 1 but the rank's cpus 0-3 are on package 0" "$TMP/err" &&
       grep -q "name a NIC of package 0 instead (mlx5_0, mlx5_1)" "$TMP/err"; then
        pass "NIC on the other socket: warning names rank, host, NIC and the fix"
    else
        fail "NIC on the other socket: no warning"; cat "$TMP/err"
    fi
fi

if topo "shared NIC" 0 --topo-xml "$X2S4N" --local-size 2 --hca mlx5_0; then
    if grep -q "local rank 0 on 2s4n: shares NIC mlx5_0 with local rank 1 while mlx5_1, mlx5_2, mlx5_3 are idle" "$TMP/err"; then
        pass "two ranks on one NIC while others idle: warning"
    else
        fail "shared NIC: no warning"; cat "$TMP/err"
    fi
fi

if topo "no NIC" 0 --topo-xml "$X2S0N" --local-size 2 &&
   has "no NIC" "$TMP/out" \
    "#   no RDMA NIC: the verbs transport cannot run here (tcp and shm can)" \
    "#   local rank 1 on 2s0n: cpus=1 numa=0 nic=none dist=-" && no_warning "no NIC"; then
    pass "no NIC at all: says so, places cpus"
fi

if topo "this machine" 0 && grep -q '^# Placement of 1 local rank' "$TMP/out"; then
    pass "this machine's map"
fi

for bad in "missing file|cannot read the topology file|--topo-xml $ROOT/tests/topo/none.xml" \
           "not XML|is not an hwloc XML topology|--topo-xml $ROOT/Makefile" \
           "bad bind|unknown --bind 'socket'|--bind socket" \
           "bad size|bad value '0' for --local-size|--local-size 0" \
           "bad hca|cannot parse --hca 'mlx5_0:x'|--topo-xml $X2S4N --hca mlx5_0:x" \
           "bad cpus|CPU list '64' of local rank 0|--topo-xml $X2S4N --cpus 64"; do
    IFS='|' read -r name text args <<< "$bad"
    # shellcheck disable=SC2086
    if topo "$name" 2 $args; then
        if grep -qF -- "$text" "$TMP/err"; then pass "refused: $name"; else fail "$name: message lacks '$text'"; cat "$TMP/err"; fi
    fi
done

# the run's flags parse (before MPI starts: --help stops there)
if expect_rc 0 "--bind in a run" "$CB" all_reduce --bind numa --topo-xml "$X2S4N" --help; then
    pass "--bind and --topo-xml accepted by a run"
fi
if expect_rc 2 "bad --bind in a run" "$CB" all_reduce --bind socket && grep -q "unknown --bind 'socket'" "$TMP/err"; then
    pass "refused: --bind socket in a run"
fi
