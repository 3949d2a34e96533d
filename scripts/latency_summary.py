#!/usr/bin/env python3
"""One line of `whittle eval --json` against a reference: the MACs ratio and each batch size's latency ratio.

    latency_summary.py EVAL.json [LABEL]      # LABEL defaults to the file's name
"""
import json
import os
import sys

r = json.load(open(sys.argv[1]))
label = sys.argv[2] if len(sys.argv) > 2 else os.path.basename(sys.argv[1])[:-5]
m, ref = r["model"], r["reference"]
macs = m["macsPerExample"] / ref["macsPerExample"]
lat = {a["batchSize"]: a["medianMilliseconds"] for a in m["latency"]}
base = {a["batchSize"]: a["medianMilliseconds"] for a in ref["latency"]}
ratios = "  ".join(f"batch {b}: {lat[b] / base[b]:.3f}× ({lat[b]:.4g} / {base[b]:.4g} ms)" for b in sorted(lat))
print(f"{label:12s} MACs {macs:.3f} (×1.1 = {1.1 * macs:.3f})  {ratios}")
