#!/usr/bin/env python3
"""Markdown tables from the reports scripts/lowrank_acceptance.sh writes (compress --report JSON, eval --json)."""
import json
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else '/tmp/whittle-lowrank-acceptance'


def load(name):
    path = os.path.join(out, name)
    return json.load(open(path)) if os.path.exists(path) else None


def latency(e):
    """Median ms at batch 1 of (model, reference) from an eval --json report."""
    if e is None:
        return None
    m, r = e['model']['latency'], e['reference']['latency']
    return (m[0]['medianMilliseconds'], r[0]['medianMilliseconds']) if m and r else None


def pct(v):
    return '-' if v is None else f'{100 * v:.2f} %'


print('## Joint low-rank factorization on the Fashion-MNIST fixtures (held-out: 2,000 test images)\n')
print('| model | run | selection data | params before → after | Δ params | calibration loss orig → final | layers factorized | '
      'held-out accuracy orig → compressed | agreement | latency b1 ms orig → compressed | compress s |')
print('|---|---|---|---|---|---|---|---|---|---|---|')
for m in ['mlp', 'vgg', 'resnet']:
    for run in ['lossless', 'compact', 'compact-lf', 'compact-0.005', 'compact-0.005-lf', 'lossless-unseen']:
        c = load(f'{m}.{run}.json')
        if c is None:
            continue
        res = c['results'][0]
        rep = res['report']
        d = rep['details']
        ev = res.get('evaluation') or {}
        before, after = rep['before']['parameters'], rep['after']['parameters']
        lat = latency(load(f'{m}.{run}.eval.json'))
        acc = f"{pct(ev.get('reference', {}).get('accuracy'))} → {pct(ev.get('model', {}).get('accuracy'))}"
        seconds = sum(t['seconds'] for t in rep['timings'])
        sel = 'train (fixture calib, 1,000)' if 'unseen' not in run else 'test 2000–2999 (unseen, 1,000)'
        print(f"| {m} | {d['mode']}, tol {d['lossTolerance']}, {d.get('order', 'graph')} order | {sel} | {before:,} → {after:,} | {100 * (after - before) / before:+.1f} % | "
              f"{d['originalLoss']:.5f} → {d['finalLoss']:.5f} | {d['layersFactorized']}/{d['layersConsidered']} | {acc} | "
              f"{pct((ev.get('comparison') or {}).get('agreement'))} | "
              f"{'-' if lat is None else f'{lat[1]:.3f} → {lat[0]:.3f}'} | {seconds:.1f} |")

print('\n## SVD baselines on the byte-level language models at 80 % of the parameters (held-out Moby Dick text)\n')
print('| model | method | params before → after | held-out perplexity orig → compressed | KL | top-1 agreement | mean layer output error (calib) | latency b1 ms orig → compressed | compress s |')
print('|---|---|---|---|---|---|---|---|---|')
for m in ['gpt2', 'llama']:
    for method in ['svd', 'asvd', 'whitened-svd']:
        c = load(f'{m}.{method}.json')
        if c is None:
            continue
        res = c['results'][0]
        rep = res['report']
        ev = res.get('evaluation') or {}
        errors = [s['measuredError'] for s in rep['sites'] if s.get('measuredError') is not None and s.get('skipped') is None]
        lat = latency(load(f'{m}.{method}.eval.json'))
        comp = ev.get('comparison') or {}
        seconds = sum(t['seconds'] for t in rep['timings'])
        print(f"| {m} | {method} | {rep['before']['parameters']:,} → {rep['after']['parameters']:,} | "
              f"{ev.get('reference', {}).get('perplexity', float('nan')):.3f} → {ev.get('model', {}).get('perplexity', float('nan')):.3f} | "
              f"{comp.get('meanKl', float('nan')):.4f} | {pct(comp.get('agreement'))} | "
              f"{(sum(errors) / len(errors)) if errors else float('nan'):.4f} | {'-' if lat is None else f'{lat[1]:.3f} → {lat[0]:.3f}'} | {seconds:.1f} |")
