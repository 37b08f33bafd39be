# Shared by the integration tests. Each case prints one "PASS: name",
# "FAIL: name: why" or "SKIP: name: why" line.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${COLLBENCH_BUILD:-build}
CB=$ROOT/$BUILD/collbench
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# keep MPI off the verbs stack and quiet about the missing fabric
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader,tcp OMPI_MCA_osc=^ucx
export OMPI_MCA_btl_base_warn_component_unused=0 OMPI_MCA_rmaps_base_oversubscribe=1
# Under mpirun, LeakSanitizer only sees MPI's own allocations of components it
# has already unloaded (unknown modules, not suppressible): leaks are checked
# by the unit tests, which exercise the transports without MPI; memory errors
# and undefined behaviour are still fatal here.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
QUICK=${COLLBENCH_QUICK:-0}   # 1: the sanitizer pass runs a smaller matrix
TMP=$(mktemp -d /tmp/collbench-it.XXXXXX)   # CB_TEST_KEEP=1 keeps it for a post-mortem
trap '[ "${CB_TEST_KEEP:-0}" = 1 ] || rm -rf "$TMP"' EXIT

exec 9>&1   # the script's own stdout: schema failures are reported there even when a run's output is kept

# schema_check ARGS...: every native -J file collbench was asked to write
# must match docs/collbench-run.schema.json (nccl-tests' format is checked
# by nccl_format.py); a mismatch is a FAIL line of its own. A symbolic link
# at the path is not collbench's (it refuses to write through one).
schema_check() {
    local prev= a
    [[ " $* " == *" --format nccl-tests "* ]] && return 0   # nccl-tests' layout, and maybe FILE.0
    for a in "$@"; do
        case $prev in
            -J|--json|--output_file)
                if [ -f "$a" ] && [ ! -L "$a" ] && ! python3 "$ROOT/tests/validate_json.py" "$a" > "$TMP/schema.why" 2>&1; then
                    echo "FAIL: $a does not match docs/collbench-run.schema.json: $(head -c 400 "$TMP/schema.why")" >&9
                fi ;;
        esac
        prev=$a
    done
}

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; }
skip() { echo "SKIP: $*"; }

# mpi N ARGS... : run collbench on N ranks of this machine, with a time limit
mpi() {
    local n=$1; shift
    timeout -k 5 "${MPI_TIMEOUT:-300}" mpirun --oversubscribe -np "$n" "$CB" "$@"
    local rc=$?
    schema_check "$@"
    return $rc
}

# expect_rc WANT NAME CMD... : run, compare the exit status, keep output in $TMP/out
expect_rc() {
    local want=$1 name=$2; shift 2
    "$@" > "$TMP/out" 2> "$TMP/err"
    local rc=$?
    if [ "$rc" = "$want" ]; then return 0; fi
    fail "$name: exit $rc, expected $want"; tail -5 "$TMP/err"; tail -3 "$TMP/out"
    return 1
}

# no_wrong NAME: the last run's table says 0 wrong and has rows
no_wrong() {
    local name=$1 rows
    rows=$(grep -cvE '^#|^$' "$TMP/out")
    if [ "$rows" -lt 1 ]; then fail "$name: no result rows"; return 1; fi
    if ! grep -q '^# Out of bounds values : 0 OK' "$TMP/out"; then
        fail "$name: wrong results"; grep -E 'wrong|error' "$TMP/err" | head -5; return 1
    fi
    return 0
}
