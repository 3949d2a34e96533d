#!/usr/bin/env python3
"""The table of scripts/compare_methods.sh: every method at matched sizes, held-out figures and batch-1 latency."""
import glob
import json
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/whittle-compare"
print("| model | method | budget | params kept | MACs kept | accuracy / ppl (original) | agreement % | KL | batch-1 latency |")
print("|---|---|---|---|---|---|---|---|---|")
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    model, method = os.path.basename(path)[:-5].split(".")
    for r in json.load(open(path))["results"]:
        rep, ev = r["report"], r["evaluation"]
        m, ref, cmp = ev["model"], ev["reference"], ev["comparison"]
        b = rep["budget"]
        budget = f"keep {b['value']:g} of params" if b["kind"] == "keep-parameters" else (rep.get("details") or {}).get("mode") or b["kind"]
        quality = f"{100 * m['accuracy']:.2f} %" if m.get("accuracy") is not None else f"{m['perplexity']:.3f}"
        original = f"{100 * ref['accuracy']:.2f} %" if ref.get("accuracy") is not None else f"{ref['perplexity']:.3f}"
        latency = m["latency"][0]["medianMilliseconds"] / ref["latency"][0]["medianMilliseconds"] if m.get("latency") else float("nan")
        print(f"| {model} | {method} | {budget} | {rep['after']['parameters'] / rep['before']['parameters']:.3f} | "
              f"{rep['after']['macsPerExample'] / rep['before']['macsPerExample']:.3f} | {quality} ({original}) | "
              f"{100 * (cmp.get('agreement') or float('nan')):.2f} | {cmp.get('meanKl') or float('nan'):.4g} | {latency:.2f}× |")
