# bash completion for collbench and nccl-tests' names (installed by make install
# into share/bash-completion/completions/). Self-contained: no bash-completion helpers.
_collbench() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local colls="all_reduce all_gather reduce_scatter alltoall broadcast reduce sendrecv"
    local opts="--minbytes --maxbytes --stepbytes --stepfactor --iters --warmup_iters --agg_iters
        --run_cycles --check --op --datatype --root --blocking --average --timeout --json --output_file
        --per_iter --per_iter_timing --per_iter_skip --unalign --nthreads --ngpus --parallel_init
        --stream_null --cudagraph --report_cputime --report_timestamps --local_register --cta_policy
        --device_implementation --device_cta_count --memory --memory_report --format --csv --transport
        --algo --seed --channels --mpi-reference --slot-bytes --slots --tcp-if --hca --gid-index
        --gid-family --gid-subnet --roce-version --tc --sl --mtu --qps --ib-timeout --ib-retry --ib-relaxed-ordering --ib-ar --ib-ar-threshold --ib-split-data --bind
        --topo-xml --help --version"
    case $prev in
        -d|--datatype)
            COMPREPLY=($(compgen -W "int8 uint8 int32 uint32 int64 uint64 half float double bfloat16 f8e4m3 f8e5m2 all" -- "$cur")); return ;;
        -o|--op) COMPREPLY=($(compgen -W "sum prod min max avg mulsum all" -- "$cur")); return ;;
        --transport) COMPREPLY=($(compgen -W "auto shm tcp verbs" -- "$cur")); return ;;
        --algo) COMPREPLY=($(compgen -W "auto ring tree rd rabenseifner direct pairwise linear mpi" -- "$cur")); return ;;
        --format) COMPREPLY=($(compgen -W "nccl-tests native" -- "$cur")); return ;;
        --bind) COMPREPLY=($(compgen -W "none core numa auto" -- "$cur")); return ;;
        -J|--json|--output_file|--csv|--topo-xml) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    if [ "$COMP_CWORD" = 1 ] && [ "${COMP_WORDS[0]##*/}" = collbench ] && [[ $cur != -* ]]; then
        COMPREPLY=($(compgen -W "$colls pairs topo model tune" -- "$cur"))
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
    fi
}
complete -F _collbench collbench all_reduce_perf all_gather_perf reduce_scatter_perf alltoall_perf \
    broadcast_perf reduce_perf sendrecv_perf all_reduce_perf_mpi all_gather_perf_mpi reduce_scatter_perf_mpi \
    alltoall_perf_mpi broadcast_perf_mpi reduce_perf_mpi sendrecv_perf_mpi
