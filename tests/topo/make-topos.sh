#!/bin/bash
# Regenerates the synthetic topologies of the topology tests with hwloc's own
# tools: lstopo writes the CPU side from a synthetic description, and the I/O
# side (PCI bridges, NICs, GPUs and their OS devices) is added to each package.
#   2s0n.xml  2 packages x 1 NUMA node x 4 cores, no I/O at all
#   2s4n.xml  the same, plus per package: a host bridge with two PCIe switches,
#             one ConnectX NIC under each (mlx5_0,1 on package 0; mlx5_2,3 on
#             package 1; port 1 ACTIVE), a GPU beside the first NIC of each
#             package (cuda0/nvml0, cuda1/nvml1), and an Ethernet-only NIC
#             (eno1) on package 0's host bridge.
#   2s8n.xml  a DGX-like server: 2 packages x 1 NUMA node x 8 cores, per
#             package a host bridge with four PCIe switches, each holding a
#             ConnectX NIC and a GPU beside it (mlx5_0-3 and cuda0-3 on
#             package 0, mlx5_4-7 and cuda4-7 on package 1; port 1 ACTIVE),
#             and eno1 on package 0's host bridge. 8 cores per package, so
#             16 ranks can each bind a core beside their NIC.
# Check: lstopo-no-graphics -i tests/topo/2s4n.xml --of console
set -euo pipefail
cd "$(dirname "$0")"

cpu_side() {   # [cores per package]
    lstopo-no-graphics -i "pack:2 numa:1 core:${1:-4} pu:1" --of xml | grep -v '"ProcessName"'
}

nic() {   # ind bus k gp
    local i=$1 bus=$2 k=$3 gp=$4
    cat <<X
$i<object type="PCIDev" gp_index="$gp" pci_busid="0000:$bus:00.0" pci_type="0207 [15b3:101b] [15b3:0007] 00" pci_link_speed="31.507692">
$i  <info name="PCIVendor" value="Mellanox Technologies"/>
$i  <info name="PCIDevice" value="MT28908 Family [ConnectX-6]"/>
$i  <object type="OSDev" gp_index="$((gp + 1))" name="ib$k" osdev_type="2">
$i    <info name="Address" value="00:00:10:87:fe:80:00:00:00:00:00:00:b8:59:9f:03:00:00:00:0$k"/>
$i    <info name="Port" value="1"/>
$i  </object>
$i  <object type="OSDev" gp_index="$((gp + 2))" name="mlx5_$k" osdev_type="3">
$i    <info name="NodeGUID" value="b859:9f03:0000:000$k"/>
$i    <info name="Port1State" value="4"/>
$i    <info name="Port1LID" value="0x$((k + 1))"/>
$i  </object>
$i</object>
X
}

gpu() {   # ind bus k gp
    local i=$1 bus=$2 k=$3 gp=$4
    cat <<X
$i<object type="PCIDev" gp_index="$gp" pci_busid="0000:$bus:00.0" pci_type="0302 [10de:20b0] [10de:1450] a1" pci_link_speed="31.507692">
$i  <info name="PCIVendor" value="NVIDIA Corporation"/>
$i  <info name="PCIDevice" value="GA100 [A100 SXM4 40GB]"/>
$i  <object type="OSDev" gp_index="$((gp + 1))" name="cuda$k" osdev_type="5">
$i    <info name="CoProcType" value="CUDA"/>
$i  </object>
$i  <object type="OSDev" gp_index="$((gp + 2))" name="nvml$k" osdev_type="1"/>
$i</object>
X
}

pci_switch() {   # ind secbus subbus gp rootbus
    echo "$1<object type=\"Bridge\" gp_index=\"$4\" bridge_type=\"1-1\" depth=\"1\" pci_busid=\"0000:$(printf %02x "$5"):0$(($4 % 8)).0\" pci_type=\"0604 [10b5:8747] [0000:0000] ca\" pci_link_speed=\"15.753846\" bridge_pci=\"0000:[$(printf %02x "$2")-$(printf %02x "$3")]\">"
}

io_side() {   # package
    local p=$1 base=$((0x10 + 0x70 * $1)) gp=$((100 + 40 * $1)) i="      "
    echo "$i<object type=\"Bridge\" gp_index=\"$gp\" bridge_type=\"0-1\" depth=\"0\" bridge_pci=\"0000:[$(printf %02x $base)-$(printf %02x $((base + 8)))]\">"
    pci_switch "$i  " $((base + 1)) $((base + 2)) $((gp + 1)) $base
    nic "$i    " "$(printf %02x $((base + 1)))" $((2 * p)) $((gp + 2))
    gpu "$i    " "$(printf %02x $((base + 2)))" "$p" $((gp + 6))
    echo "$i  </object>"
    pci_switch "$i  " $((base + 4)) $((base + 4)) $((gp + 10)) $base
    nic "$i    " "$(printf %02x $((base + 4)))" $((2 * p + 1)) $((gp + 11))
    echo "$i  </object>"
    [ "$p" = 0 ] && eth "$i  " "$base" $((gp + 20))
    echo "$i</object>"
}

# 2s8n: per package, four PCIe switches each with a NIC and its GPU.
io_side_8n() {   # package
    local p=$1 base=$((0x10 + 0x70 * $1)) gp=$((100 + 40 * $1)) i="      " s bus
    echo "$i<object type=\"Bridge\" gp_index=\"$gp\" bridge_type=\"0-1\" depth=\"0\" bridge_pci=\"0000:[$(printf %02x $base)-$(printf %02x $((base + 8)))]\">"
    for s in 0 1 2 3; do
        bus=$((base + 1 + 2 * s))
        pci_switch "$i  " $bus $((bus + 1)) $((gp + 1 + 7 * s)) $base
        nic "$i    " "$(printf %02x $bus)" $((4 * p + s)) $((gp + 2 + 7 * s))
        gpu "$i    " "$(printf %02x $((bus + 1)))" $((4 * p + s)) $((gp + 5 + 7 * s))
        echo "$i  </object>"
    done
    [ "$p" = 0 ] && eth "$i  " "$base" $((gp + 30))
    echo "$i</object>"
}

eth() {   # ind rootbus gp: an Ethernet-only NIC on the host bridge
    local i=$1 base=$2 gp=$3
    cat <<X
$i<object type="PCIDev" gp_index="$gp" pci_busid="0000:$(printf %02x "$base"):1f.6" pci_type="0200 [8086:1521] [8086:0001] 01" pci_link_speed="0.500000">
$i  <info name="PCIVendor" value="Intel Corporation"/>
$i  <info name="PCIDevice" value="I350 Gigabit Network Connection"/>
$i  <object type="OSDev" gp_index="$((gp + 1))" name="eno1" osdev_type="2">
$i    <info name="Address" value="3c:ec:ef:00:00:01"/>
$i  </object>
$i</object>
X
}

# Insert each package's I/O (made by function $1) just before that package's closing tag.
with_io() {
    local pkg=-1
    while IFS= read -r line; do
        case $line in
            '    <object type="Package" os_index="'*) pkg=${line#*os_index=\"}; pkg=${pkg%%\"*} ;;
            '    </object>') [ "$pkg" -ge 0 ] && "$1" "$pkg"; pkg=-1 ;;
        esac
        printf '%s\n' "$line"
    done
}

cpu_side > 2s0n.xml
cpu_side | with_io io_side > 2s4n.xml
cpu_side 8 | with_io io_side_8n > 2s8n.xml
for f in 2s0n.xml 2s4n.xml 2s8n.xml; do
    lstopo-no-graphics -i "$f" --of console > /dev/null
done
echo "wrote 2s0n.xml 2s4n.xml 2s8n.xml"
