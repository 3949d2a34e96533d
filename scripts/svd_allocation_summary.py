#!/usr/bin/env python3
"""The table of scripts/svd_allocation.sh: rank allocations of the SVD baselines side by side, held-out figures."""
import glob
import json
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/whittle-svd-allocation"
rows = {}
allocations = []
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    model, method, alloc = os.path.basename(path)[:-5].split(".")
    if alloc not in allocations: allocations.append(alloc)
    for r in json.load(open(path))["results"]:
        rep, ev = r["report"], r["evaluation"]
        m, ref, cmp = ev["model"], ev["reference"], ev["comparison"]
        quality = f"{100 * m['accuracy']:.2f} %" if m.get("accuracy") is not None else f"{m['perplexity']:.3f}"
        original = f"{100 * ref['accuracy']:.2f} %" if ref.get("accuracy") is not None else f"{ref['perplexity']:.3f}"
        rows.setdefault((model, method, rep["budget"]["value"]), {})[alloc] = dict(
            params=rep["after"]["parameters"] / rep["before"]["parameters"],
            quality=quality, original=original,
            agreement=100 * cmp["agreement"] if cmp.get("agreement") is not None else float("nan"),
            kl=cmp.get("meanKl") or float("nan"),
            macs=rep["after"]["macsPerExample"] / rep["before"]["macsPerExample"],
            latency=m["latency"][0]["medianMilliseconds"] / ref["latency"][0]["medianMilliseconds"] if m.get("latency") else float("nan"))

print("| model | method | keep params | " + " | ".join(f"{a}: params, quality, agreement %, KL, MACs, batch-1 latency" for a in allocations) + " | original |")
print("|---|---|---|" + "---|" * len(allocations) + "---|")
for (model, method, keep), by in rows.items():
    cells = []
    for a in allocations:
        x = by.get(a)
        cells.append("–" if x is None else f"{x['params']:.3f}, {x['quality']}, {x['agreement']:.2f}, {x['kl']:.4g}, {x['macs']:.3f}, {x['latency']:.2f}×")
    original = next(iter(by.values()))["original"]
    print(f"| {model} | {method} | {keep:g} | " + " | ".join(cells) + f" | {original} |")
