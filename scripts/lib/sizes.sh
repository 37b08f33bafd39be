# shellcheck shell=bash
# Sourced by the bench scripts: sizes as collbench takes them (8, 64K, 16M, 1G).
# cb_bytes SIZE -> bytes on stdout; exit 2 with a message naming the script on a bad size.
cb_bytes() {
    local v=$1 m=1
    case $v in *K|*k) m=1024 ;; *M|*m) m=1048576 ;; *G|*g) m=1073741824 ;; esac
    v=${v%[KkMmGg]}
    [[ $v =~ ^[0-9]+$ ]] || { echo "$(basename "$0"): bad size '$1' (use e.g. 8, 64K, 16M)" >&2; exit 2; }
    echo $((v * m))
}
