#!/bin/bash
# make install with PREFIX and DESTDIR: the binary and nccl-tests' names run,
# the operator tools run outside the source tree and write under the current
# folder, the man page renders, bash completion completes.
source "$(dirname "$0")/../lib.sh"
D=$TMP/dest
P=/opt/cb
SAN=; [ "$BUILD" = build-san ] && SAN=SANITIZE=1
name="make install"
if expect_rc 0 "$name" make -C "$ROOT" --no-print-directory install $SAN DESTDIR="$D" PREFIX=$P; then
    missing=
    for f in bin/collbench bin/all_reduce_perf bin/sendrecv_perf_mpi bin/collbench-compare bin/collbench-nightly \
             bin/collbench-validate-rack share/man/man1/collbench.1 share/man/man1/alltoall_perf.1 \
             share/bash-completion/completions/collbench share/doc/collbench/collbench-run.schema.json \
             share/collbench/build/collbench share/collbench/results/profiles/netns-tcp.json \
             share/collbench/scripts/templates/collbench-sweep.sbatch; do
        [ -e "$D$P/$f" ] || missing="$missing $f"
    done
    if [ -z "$missing" ]; then pass "$name"; else fail "$name: missing$missing"; fi
fi

name="installed --version is the build's"
want=$("$CB" --version)
if [ -n "$want" ] && [ "$("$D$P/bin/collbench" --version)" = "$want" ] && [[ $want =~ ^collbench\ [0-9] ]]; then
    pass "$name"; else fail "$name: '$want'"; fi

name="installed all_reduce_perf runs"
if expect_rc 0 "$name" timeout 120 mpirun --oversubscribe -np 2 "$D$P/bin/all_reduce_perf" -b 1K -e 1K -n 1 -g 1 &&
   grep -q '^# Collective test concluded: all_reduce_perf$' "$TMP/out"; then pass "$name"; fi

name="installed collbench-compare writes under the current folder"
mkdir -p "$TMP/work"
if (cd "$TMP/work" && expect_rc 0 "$name" "$D$P/bin/collbench-compare" "$ROOT/tests/golden/compare-a.json" \
        "$ROOT/tests/golden/compare-b.json") && ls "$TMP"/work/results/runs/compare-*/verdicts.csv > /dev/null 2>&1; then
    pass "$name"
else
    fail "$name: $(ls -R "$TMP/work" | head -5)"
fi

name="man page renders"
if groff -man -Tutf8 -ww -z "$D$P/share/man/man1/collbench.1" > "$TMP/groff" 2>&1 && [ ! -s "$TMP/groff" ] &&
   man -l "$D$P/share/man/man1/collbench.1" 2>/dev/null | grep -q NCCL_TESTS_MIN_BW; then
    pass "$name"; else fail "$name: $(head -3 "$TMP/groff")"; fi

name="bash completion"
got=$(bash -c 'source "$1"; COMP_WORDS=(collbench all_reduce --trans); COMP_CWORD=2; _collbench; echo "${COMPREPLY[*]}"
               COMP_WORDS=(all_reduce_perf -d bfl); COMP_CWORD=2; _collbench; echo "${COMPREPLY[*]}"
               COMP_WORDS=(collbench all_g); COMP_CWORD=1; _collbench; echo "${COMPREPLY[*]}"' _ \
      "$D$P/share/bash-completion/completions/collbench")
if [ "$got" = $'--transport\nbfloat16\nall_gather' ]; then pass "$name"; else fail "$name: $got"; fi
