"""Where a kernel's warps spend their time, by the stretches of code between
two waits (host; reads what `NCU_SOURCE=1 bench/ncu_profile.sh` or
`ncu -i REPORT --page source --csv --print-source sass` exported).

Nsight Compute samples each warp's state at a fixed interval and charges the
sample to the instruction the warp is about to issue, so the samples of a
stretch of SASS are the warp-time spent there. A wait's stall lands on the
instruction after it; cutting the code after every wait (named barrier,
wgmma wait, mbarrier try-wait, the last wgmma of a group) gives segments
whose samples hold one wait each plus the work before the next. Two kernels
doing the same work (ours and FlashMLA's, thirty-fifth session of
docs/perf.md) compared segment by segment show which wait or stretch is
theirs alone.

    python3 bench/ncu_segments.py SASS.csv [--min-exec N] [--top K] [--rest-min S]

Prints the samples per stall reason ("unlisted": samples the export
gives no reason for, most of a wgmma's wait to issue), per opcode (with
its three largest reasons), the K instructions with the most samples, and the segments of
the hot code: instructions executed at least N times (default: 90% of
the count that holds the most samples, the main loop's), then the rest:
each run of consecutive instructions outside the hot code with at least S
samples (default: 0.5% of all), with its first instruction's execution
count (one warp's copier block runs a quarter as often as the loop) and
its instruction with the most samples. The thirty-sixth session found the
pair kernel's last lead over FlashMLA there: the loop's segments matched,
the copier blocks did not (docs/perf.md).
"""
import argparse
import collections
import csv
import sys

SAMPLES = "Warp Stall Sampling (All Samples)"
EXECUTED = "Instructions Executed"
WAITS = ("BAR.SYNC", "BAR.ARV", "BAR.RED", "WARPGROUP.DEPBAR", "TRYWAIT")


def number(text):
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def load(path):
    """The export's instruction rows as dicts (the header is the row naming
    both Address and Source; ncu prints a kernel-name line above it)."""
    with open(path, newline="", errors="replace") as f:
        rows = list(csv.reader(f))
    for i, row in enumerate(rows):
        if "Address" in row and "Source" in row:
            header = row
            return header, [dict(zip(header, r)) for r in rows[i + 1:] if len(r) >= len(header)]
    sys.exit(f"{path}: no header row with Address and Source (an ncu --page source --csv export?)")


def opcode(source):
    words = source.split()
    if not words:
        return "?"
    op = words[1] if words[0].startswith("@") and len(words) > 1 else words[0]
    return op.split(".")[0]


def ends_segment(source):
    return any(w in source for w in WAITS) or ("GMMA" in source and "gsb0" in source)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--min-exec", type=float, default=None, help="hot code: executed at least this often")
    ap.add_argument("--top", type=int, default=12, help="instructions with the most samples to list")
    ap.add_argument("--rest-min", type=float, default=None,
                    help="runs outside the hot code with at least this many samples (default 0.5%% of all)")
    args = ap.parse_args()
    header, rows = load(args.csv)
    if SAMPLES not in header or EXECUTED not in header:
        sys.exit(f"{args.csv}: no '{SAMPLES}' or '{EXECUTED}' column (collect SourceCounters)")
    reasons = [c for c in header if c.startswith("stall_") and "Not Issued" not in c]
    total = sum(number(r[SAMPLES]) for r in rows)
    if total <= 0:
        sys.exit(f"{args.csv}: no stall samples")
    # Samples the export gives no reason column for (a wgmma waiting to
    # issue, mostly): kept as their own reason so the shares add up.
    for r in rows:
        r["stall_unlisted"] = str(max(0.0, number(r[SAMPLES]) - sum(number(r[c]) for c in reasons)))
    reasons.append("stall_unlisted")

    by_reason = collections.Counter({c[6:]: sum(number(r[c]) for r in rows) for c in reasons})
    print(f"samples {total:.0f}, instructions {len(rows)}, executed {sum(number(r[EXECUTED]) for r in rows):.0f}")
    print("reasons: " + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in by_reason.most_common(10) if v))

    ops = collections.defaultdict(collections.Counter)
    for r in rows:
        c = ops[opcode(r["Source"].strip())]
        c[""] += number(r[SAMPLES])
        for reason in reasons:
            c[reason[6:]] += number(r[reason])
    print("per opcode:")
    for op, c in sorted(ops.items(), key=lambda kv: -kv[1][""])[:12]:
        top = [(k, v) for k, v in c.most_common() if k and v][:3]
        print(f"  {op:<10} {100 * c[''] / total:5.1f}%  " + ", ".join(f"{k} {100 * v / total:.1f}" for k, v in top))

    print(f"top {args.top} instructions:")
    for r in sorted(rows, key=lambda r: -number(r[SAMPLES]))[:args.top]:
        top = sorted(((number(r[c]), c[6:]) for c in reasons), reverse=True)[:2]
        print(f"  {r['Address']} {100 * number(r[SAMPLES]) / total:5.2f}% x{number(r[EXECUTED]):.0f}  "
              f"{r['Source'].strip()[:60]}  | " + ", ".join(f"{k} {v:.0f}" for v, k in top if v))

    # the main loop by default: the execution count that holds the most
    # samples (its body's), less 10% for the paths that skip a step
    weight = collections.Counter()
    for r in rows:
        weight[number(r[EXECUTED])] += number(r[SAMPLES])
    floor = args.min_exec if args.min_exec is not None else 0.9 * weight.most_common(1)[0][0]
    print(f"segments of the code executed at least {floor:.0f} times (samples, share, instructions, ends with):")
    hot = 0.0
    start, samples, count = None, 0.0, 0
    for r in rows:
        if number(r[EXECUTED]) < floor:
            continue
        source = r["Source"].strip()
        start = start or r["Address"]
        samples += number(r[SAMPLES])
        count += 1
        if ends_segment(source):
            print(f"  {start} {samples:7.0f} {100 * samples / total:5.2f}% {count:4d}  {source[:60]}")
            hot += samples
            start, samples, count = None, 0.0, 0
    if count:
        print(f"  {start} {samples:7.0f} {100 * samples / total:5.2f}% {count:4d}  (end)")
        hot += samples
    print(f"hot code {hot:.0f} samples ({100 * hot / total:.1f}%), the rest {total - hot:.0f}")

    rest_floor = args.rest_min if args.rest_min is not None else 0.005 * total
    print(f"the rest, runs outside the hot code with at least {rest_floor:.0f} samples "
          "(first..last, samples, share, instructions, first one's count, the busiest):")
    run = []

    def flush():
        if not run:
            return
        got = sum(number(r[SAMPLES]) for r in run)
        if got >= rest_floor:
            busiest = max(run, key=lambda r: number(r[SAMPLES]))
            print(f"  {run[0]['Address']}..{run[-1]['Address']} {got:7.0f} {100 * got / total:5.2f}% {len(run):4d} "
                  f"x{number(run[0][EXECUTED]):.0f}  {busiest['Address']} {number(busiest[SAMPLES]):.0f} "
                  f"{busiest['Source'].strip()[:50]}")
        run.clear()

    for r in rows:
        if number(r[EXECUTED]) >= floor:
            flush()
        else:
            run.append(r)
    flush()


if __name__ == "__main__":
    main()
