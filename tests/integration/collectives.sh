#!/bin/bash
# Every collective x {shm, tcp} x ranks {1,2,3,5,7,16 (oversubscribed)},
# out-of-place and in-place, several types and ops, every element checked.
# Small FIFO slots (4 KiB x 4) so that even these sizes need many rounds and
# slices; sizes that do not divide by the rank count.
source "$(dirname "$0")/../lib.sh"

COLLS="all_reduce all_gather reduce_scatter alltoall broadcast reduce sendrecv"
SIZES=(-b 1000 -e 120K -f 11)          # 1000, 11000, 121000 -> 1000 11000
SMALL_FIFO=(--slot-bytes 4K --slots 4)

types_for() {   # rank count, collective -> the types and ops to cover (all of them over the matrix)
    local ops
    if [ "$QUICK" = 1 ]; then
        echo -n "-d float,half,f8e5m2,int64"; ops="-o sum,avg,max,mulsum"
    else case $1 in
        1|2|3) echo -n "-d all"; ops="-o all" ;;
        5) echo -n "-d float,half,int32,uint8"; ops="-o sum,prod,avg,mulsum" ;;
        7) echo -n "-d bfloat16,f8e4m3,double,int64"; ops="-o sum,min,max,avg,mulsum" ;;
        16) echo -n "-d f8e5m2,float,uint64"; ops="-o sum,avg,mulsum" ;;
    esac fi
    case $2 in all_reduce|reduce_scatter|reduce) echo " $ops" ;; *) echo ;; esac
}

ranks_for() {   # transport -> rank counts; the sanitizer pass (QUICK) takes each transport's
    # paths once (1 and 3 ranks over shm, 2 over tcp): test_algos already runs every
    # algorithm at 2 to 5 ranks under the sanitizers
    if [ "$QUICK" != 1 ]; then echo "1 2 3 5 7 16"; elif [ "$1" = shm ]; then echo "1 3"; else echo 2; fi
}

for transport in shm tcp; do
    for n in $(ranks_for "$transport"); do
        for coll in $COLLS; do
            name="$coll $transport np=$n"
            # shellcheck disable=SC2046
            if expect_rc 0 "$name" mpi "$n" "$coll" --transport "$transport" "${SIZES[@]}" \
                "${SMALL_FIFO[@]}" $(types_for "$n" "$coll") -n 2 -w 1 -c 2 -I 0 -r $((n - 1)); then
                no_wrong "$name" && pass "$name"
            fi
        done
    done
done

# mulsum, nccl-tests' pre-multiplied sum (odd ranks' input times 2), on its
# own besides -o all above: 3 ranks (rank 1 doubles), checked, and in the
# quick pass too.
for coll in all_reduce reduce_scatter reduce; do
    name="$coll -o mulsum np=3"
    if expect_rc 0 "$name" mpi 3 "$coll" -o mulsum -d half,int32,f8e4m3,double -b 1000 -e 11000 -f 11 \
        "${SMALL_FIFO[@]}" -n 2 -w 1 -c 2 -I 0 -r 1; then
        if [ "$(grep -cE '^ +[0-9]+ +[0-9]+ +[a-z0-9]+ +mulsum ' "$TMP/out")" = 8 ]; then
            no_wrong "$name" && pass "$name"
        else
            fail "$name: not 8 mulsum rows: $(grep -vE '^#' "$TMP/out" | head -3)"
        fi
    fi
done

# Large enough for the default FIFO (512 KiB x 8) to need several rounds.
for transport in shm tcp; do
    name="all_reduce 8M default FIFO $transport np=3"
    if expect_rc 0 "$name" mpi 3 all_reduce --transport "$transport" -b 8M -e 8M -n 2 -c 1; then
        no_wrong "$name" && pass "$name"
    fi
done

# shm's direct path and lent sends take slices of 8 KiB and more, which the
# small FIFO above never makes: 16 KiB slots here, in place and out of place,
# sizes that do not divide by the rank count; every algorithm that lends:
# rings and chains (first sends), the all_reduce tree (leaf and downward
# sends), recursive-doubling all_gather and both alltoalls (every send).
# The sanitizer pass at 3 ranks only: test_algos lends and offers at 2 to 5.
lend_ranks="2 3 5"
[ "$QUICK" = 1 ] && lend_ranks=3
for n in $lend_ranks; do
    for run in all_reduce:ring all_reduce:tree all_reduce:direct all_gather:ring all_gather:rd \
               reduce_scatter:ring reduce_scatter:direct \
               alltoall:pairwise alltoall:linear \
               broadcast:ring reduce:ring sendrecv:ring; do
        coll=${run%%:*} algo=${run#*:}
        name="$coll shm 16K slots $algo np=$n"
        # shellcheck disable=SC2046
        if expect_rc 0 "$name" mpi "$n" "$coll" --transport shm --algo "$algo" -b 100000 -e 1M -f 10 \
            --slot-bytes 16K --slots 4 $(types_for 5 "$coll") -n 2 -w 1 -c 2 -r $((n - 1)); then
            no_wrong "$name" && pass "$name"
        fi
    done
done
