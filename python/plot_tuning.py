#!/usr/bin/env python3
"""Time vs context length from `snapmla tune` results (docs/tuning.md).

    python3 python/plot_tuning.py tuned.measurements.tsv [more.tsv ...] [tuned.yaml] -o tuning.png

Measurement logs (the tab-separated files written as the tuner measures)
give one curve per config (variant x split count) and batch size; the few
fastest configs are drawn in colour, the others in grey, the best time at
each point as a black line. A tuning database (YAML; needs PyYAML) adds
each bucket's winner as a horizontal bar over the bucket's context range.
One panel per batch bucket. Needs matplotlib.
"""
import argparse
import math
import os
import sys
from collections import defaultdict


def batch_bucket(batch):
    """Index and label of the batch bucket (runtime/tuning_db.c)."""
    b = 0
    while b < 9 and batch > (1 << b):
        b += 1
    return b, batch_label(b)


def batch_label(b):
    lo = 1 if b == 0 else (1 << (b - 1)) + 1
    if b == 9:
        return "%d+" % lo
    hi = 1 << b
    return str(lo) if lo == hi else "%d-%d" % (lo, hi)


def context_edges(label):
    if label.endswith("+"):
        return int(label[:-1]), None
    lo, hi = label.split("-")
    return int(lo), int(hi)


def read_log(path):
    """{(variant, splits): {(batch, seqlen): us}}, rejected configs, device."""
    times, rejected, device = defaultdict(dict), set(), ""
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # torn by an interruption
            fields = line.rstrip("\r\n").split("\t")
            if not fields[0] or fields[0].startswith("#"):
                continue
            try:
                if fields[0] == "device":
                    device = "%s (%s)" % (fields[1], fields[2])
                elif fields[0] == "measured":
                    key = (fields[1], int(fields[2]))
                    times[key][(int(fields[3]), int(fields[4]))] = float(fields[5])
                elif fields[0] == "rejected":
                    rejected.add((fields[1], int(fields[2])))
            except (IndexError, ValueError):
                sys.exit("%s:%d: not a measurement record" % (path, number))
    for key in rejected:
        times.pop(key, None)
    return times, device


def read_db(path):
    try:
        import yaml
    except ImportError:
        sys.exit("%s: reading a tuning database needs PyYAML (pip install pyyaml)" % path)
    with open(path) as f:
        doc = yaml.safe_load(f)
    return [e for e in doc.get("entries") or []], ""


def short_names(names):
    """Variant names without their shared prefix and suffix."""
    names = list(names)
    if len(names) < 2:
        return {n: n for n in names}
    prefix = os.path.commonprefix(names)
    prefix = prefix[: prefix.rfind(".") + 1]
    suffix = os.path.commonprefix([n[::-1] for n in names])[::-1]
    suffix = suffix[suffix.find(".") :] if "." in suffix else ""
    return {n: n[len(prefix) : len(n) - len(suffix)] or n for n in names}


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="measurement logs (.tsv) and tuning databases (.yaml)")
    parser.add_argument("-o", "--output", default="tuning.png", help="image to write (default tuning.png)")
    parser.add_argument("--top", type=int, default=5, help="configs drawn in colour (default 5)")
    args = parser.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times, devices, entries = defaultdict(dict), set(), []
    for path in args.files:
        if path.endswith((".yaml", ".yml")):
            db, _ = read_db(path)
            entries += db
            devices.update("%s (%s)" % (e["device"], e["arch"]) for e in db)
        else:
            t, device = read_log(path)
            for key, points in t.items():
                times[key].update(points)
            if device:
                devices.add(device)
    panels = sorted({batch_bucket(b)[0] for pts in times.values() for b, _ in pts} |
                    {batch_bucket(int(str(e["batch"]).rstrip("+").split("-")[0]))[0] for e in entries})
    if not panels:
        sys.exit("nothing to plot: no measurements or entries in " + ", ".join(args.files))

    labels = short_names({v for v, _ in times} | {e["variant"] for e in entries})
    score = {k: geomean(list(p.values())) for k, p in times.items() if p}
    coloured = sorted(score, key=score.get)[: args.top]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.6 * len(panels)), squeeze=False)
    for ax, bucket in zip(axes[:, 0], panels):
        best = defaultdict(lambda: math.inf)
        for key, points in sorted(times.items()):
            for batch in sorted({b for b, _ in points if batch_bucket(b)[0] == bucket}):
                xs = sorted(s for b, s in points if b == batch)
                ys = [points[(batch, s)] for s in xs]
                for x, y in zip(xs, ys):
                    best[(batch, x)] = min(best[(batch, x)], y)
                name = "%s splits %d, batch %d" % (labels[key[0]], key[1], batch)
                if key in coloured:
                    ax.plot(xs, ys, "o-", ms=3, lw=1.2, label=name)
                else:
                    ax.plot(xs, ys, "-", color="0.8", lw=0.7)
        for batch in sorted({b for b, _ in best}):
            xs = sorted(s for b, s in best if b == batch)
            ax.plot(xs, [best[(batch, x)] for x in xs], "k--", lw=1, label="best, batch %d" % batch)
        for e in entries:
            lo_batch = int(str(e["batch"]).rstrip("+").split("-")[0])
            if batch_bucket(lo_batch)[0] != bucket:
                continue
            lo, hi = context_edges(str(e["context"]))
            hi = hi if hi else lo * 2
            ax.hlines(e["us"], max(lo, 1), hi, colors="crimson", lw=3, alpha=0.6)
            ax.annotate("winner %s splits %d" % (labels[e["variant"]], e.get("splits", 0)),
                        (max(lo, 1), e["us"]), fontsize=6, color="crimson",
                        textcoords="offset points", xytext=(0, 3))
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("context length (tokens)")
        ax.set_ylabel("decode call (us)")
        ax.set_title("batch %s" % batch_label(bucket), fontsize=10)
        ax.grid(True, which="both", lw=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper left")
    fig.suptitle("snapmla tune on " + (", ".join(sorted(devices)) or "an unnamed device"), fontsize=11)
    fig.tight_layout()
    fig.savefig(args.output, dpi=130)
    print("wrote %s (%d configs, %d database entries)" % (args.output, len(times), len(entries)))


if __name__ == "__main__":
    main()
