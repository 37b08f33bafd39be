#!/usr/bin/env python3
"""Mutation fuzzing of the scripts' result reader (scripts/lib/collbench_results.py,
through cb_files' strict JSON reader), bounded and deterministic: N inputs mutated from
the seed files with a fixed seed. Every input must load, or be refused with a UserError
(the scripts' one-line exit 2); any other exception is a crash, printed with the input
kept in the output folder. Usage: fuzz_results_json.py OUTDIR N SEED_FILE..."""
import json, os, random, sys, traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "lib"))
import collbench_results as cr  # noqa: E402

HOSTILE = [b"NaN", b"-Infinity", b"1e999", b"9" * 5000, b"null", b"true", b'"x"', b"[]", b"{}",
           b"-1", b"-5", b"0.0", b'"\\u0000"', b'"\xff\xfe"', b"[" * 3000 + b"]" * 3000]


def mutate(rnd, data):
    b = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        op = rnd.randrange(5)
        at = rnd.randrange(len(b) + 1)
        if op == 0 and b:                      # flip a byte
            b[min(at, len(b) - 1)] = rnd.randrange(256)
        elif op == 1:                          # cut
            del b[at:at + rnd.randint(1, 64)]
        elif op == 2:                          # a hostile token where a value may stand
            colon = b.find(b":", at)
            if colon >= 0:
                end = colon + 1
                while end < len(b) and b[end] not in b",}]":
                    end += 1
                b[colon + 1:end] = rnd.choice(HOSTILE)
        elif op == 3:                          # truncate
            del b[at:]
        else:                                  # duplicate a piece
            piece = b[at:at + rnd.randint(1, 200)]
            b[at:at] = piece
    return bytes(b)


def main():
    out, n, seeds = sys.argv[1], int(sys.argv[2]), [open(p, "rb").read() for p in sys.argv[3:]]
    rnd = random.Random(20261207)
    path = os.path.join(out, "input.json")
    crashes = 0
    for i in range(n):
        data = mutate(rnd, rnd.choice(seeds))
        with open(path, "wb") as f:
            f.write(data)
        try:
            run = cr.load_run(path)
            cr.compare_runs(run, run)
        except cr.UserError:
            pass
        except Exception:
            crashes += 1
            keep = os.path.join(out, f"crash-{i}.json")
            os.replace(path, keep)
            print(f"crash on input {i} (kept as {keep}):", file=sys.stderr)
            traceback.print_exc(limit=3)
            if crashes >= 5:
                break
    print(f"{n} inputs, {crashes} crashes")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
