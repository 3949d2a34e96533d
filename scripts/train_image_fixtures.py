#!/usr/bin/env python3
"""Train the Fashion-MNIST fixture classifiers, export them to ONNX and record reference figures.

    nice -n 10 /usr/bin/python3 scripts/train_image_fixtures.py [--models mlp,vgg,resnet] [--mlp-hidden 1024]
                                                                [--out fixtures/fashion-mnist]

Needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist) and python3-torch (1.13, CPU).
Writes into --out (default fixtures/fashion-mnist):

  mlp.onnx      Flatten -> Linear 784->H -> ReLU -> Linear H->10 (H = --mlp-hidden, 1024 committed;
                4096 is the ID paper's wide setting: pass --mlp-hidden 4096 --models mlp --out DIR)
  vgg.onnx      [conv3x3-BN-ReLU x2, maxpool] x2 (32, 64 channels), Flatten, Linear 3136->256, ReLU, Linear 10
  resnet.onnx   CIFAR-style ResNet: stem conv 16, stages 16/32/64 of one basic block, global average pool, Linear 10
  calib-{images-idx3,labels-idx1}-ubyte.gz    1000 training images (seeded choice, in index order)
  heldout-{images-idx3,labels-idx1}-ubyte.gz  the first 2000 test images
  fixtures.json figures: seed, settings, parameters, timings, and the reference evaluation

Every model takes `input` float32 [N,1,28,28] = pixel / 255 and returns `logits` [N,10]. BatchNorm is exported
as BatchNormalization nodes (training=TrainingMode.PRESERVE with the model in eval mode skips the exporter's
Conv+BN fusion). The figures are computed by running the exported ONNX graph (fixture_lib.OnnxReference) in
float32 and cross-checked against the PyTorch module.
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_lib as fl  # noqa: E402

SEED = 20251201
CALIB_SEED = 6
CALIB_COUNT = 1000
HELDOUT_COUNT = 2000


class Mlp(nn.Module):
    def __init__(self, hidden=1024):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(784, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(F.relu(self.fc1(self.flatten(x))))


class Vgg(nn.Module):
    def __init__(self, widths=(32, 64), hidden=256):
        super().__init__()
        layers, cin = [], 1
        for w in widths:
            for _ in range(2):
                layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
                cin = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = 28 // 2 ** len(widths)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, hidden), nn.ReLU(), nn.Linear(hidden, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(nn.Module):
    def __init__(self, stem=16, widths=(16, 32, 64), blocks=1):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU())
        layers, cin = [], stem
        for i, w in enumerate(widths):
            for j in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# name -> (constructor, training settings)
def configs(mlp_hidden):
    return {
        "mlp": (lambda: Mlp(mlp_hidden), dict(epochs=15, batch=128, max_lr=2e-3, weight_decay=1e-4, flip=False,
                                              hidden=mlp_hidden)),
        "vgg": (Vgg, dict(epochs=5, batch=128, max_lr=3e-3, weight_decay=5e-4, flip=True)),
        "resnet": (ResNet, dict(epochs=8, batch=128, max_lr=4e-3, weight_decay=5e-4, flip=True)),
    }


def train(model, settings, images, labels, seed):
    """AdamW with a one-cycle schedule; seeded shuffling; optional random horizontal flips."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x_all, y_all = fl.to_input(images), torch.from_numpy(labels.astype(np.int64))
    steps_per_epoch = (len(x_all) + settings["batch"] - 1) // settings["batch"]
    opt = torch.optim.AdamW(model.parameters(), lr=settings["max_lr"], weight_decay=settings["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=settings["max_lr"], total_steps=settings["epochs"] * steps_per_epoch)
    log = []
    for epoch in range(settings["epochs"]):
        model.train()
        timer = fl.Timer()
        perm = torch.randperm(len(x_all), generator=gen)
        total, correct = 0.0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * settings["batch"]:(s + 1) * settings["batch"]]
            x, y = x_all[idx], y_all[idx]
            if settings["flip"]:
                flip = torch.rand(len(x), generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(3), x)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss) * len(y)
            correct += int((logits.argmax(1) == y).sum())
        row = {"epoch": epoch + 1, "train_loss": total / len(x_all), "train_accuracy": correct / len(x_all),
               "seconds": timer.seconds()}
        log.append(row)
        print(f"  epoch {row['epoch']}: loss {row['train_loss']:.4f}, train acc {row['train_accuracy']:.4f}, "
              f"{row['seconds']} s", flush=True)
    model.eval()
    return log


def export(model, path):
    model.eval()
    example = torch.zeros(2, 1, 28, 28)
    torch.onnx.export(model, (example,), path, opset_version=fl.OPSET, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    shared = fl.materialize_shared_initializers(path)
    fl.set_metadata(path, {"whittle.task": "classifier"})
    return shared


def logits_in_batches(fn, x, batch=500):
    with torch.no_grad():
        return torch.cat([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="mlp,vgg,resnet")
    ap.add_argument("--mlp-hidden", type=int, default=1024)
    ap.add_argument("--epochs", type=int, help="override every model's epoch count (smoke runs)")
    ap.add_argument("--out", default=os.path.join(fl.FIXTURES, "fashion-mnist"))
    args = ap.parse_args()
    if args.mlp_hidden != 1024 and os.path.abspath(args.out) == os.path.join(fl.FIXTURES, "fashion-mnist"):
        ap.error("the committed mlp.onnx is the 1024-wide one: pass --out DIR for other widths")
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)
    json_path = os.path.join(args.out, "fixtures.json")
    meta = fl.read_json(json_path) if os.path.exists(json_path) else {}

    train_x, train_y = fl.fashion_mnist("train")
    test_x, test_y = fl.fashion_mnist("t10k")

    # The committed data subsets (IDX, gzip, same layout as Debian's files).
    calib_idx = np.sort(np.random.default_rng(CALIB_SEED).choice(len(train_x), CALIB_COUNT, replace=False))
    files = {
        "calib-images-idx3-ubyte.gz": train_x[calib_idx], "calib-labels-idx1-ubyte.gz": train_y[calib_idx],
        "heldout-images-idx3-ubyte.gz": test_x[:HELDOUT_COUNT], "heldout-labels-idx1-ubyte.gz": test_y[:HELDOUT_COUNT],
    }
    for name, arr in files.items():
        fl.write_idx_gz(os.path.join(args.out, name), arr)
    meta["data"] = {
        "preprocessing": "input = float32(pixel) / 255, shape [N,1,28,28]; no mean/std normalisation",
        "source": "Debian dataset-fashion-mnist: " + fl.FASHION_DIR,
        "calib": {"images": "calib-images-idx3-ubyte.gz", "labels": "calib-labels-idx1-ubyte.gz",
                  "from": "train (60000)", "count": CALIB_COUNT,
                  "choice": f"numpy.random.default_rng({CALIB_SEED}).choice(60000, {CALIB_COUNT}, replace=False), sorted",
                  "train_indices": calib_idx.tolist()},
        "heldout": {"images": "heldout-images-idx3-ubyte.gz", "labels": "heldout-labels-idx1-ubyte.gz",
                    "from": "t10k (10000)", "count": HELDOUT_COUNT, "choice": f"the first {HELDOUT_COUNT} test images"},
        "files": {name: {"bytes": os.path.getsize(os.path.join(args.out, name)),
                         "sha256": fl.sha256_file(os.path.join(args.out, name))} for name in files},
    }
    meta.setdefault("models", {})
    test_in = fl.to_input(test_x)
    cfg = configs(args.mlp_hidden)
    for name in args.models.split(","):
        make, settings = cfg[name]
        seed = {"mlp": SEED, "vgg": SEED + 1, "resnet": SEED + 2}[name]
        if args.epochs:
            settings = dict(settings, epochs=args.epochs)
        print(f"{name}: training ({settings})", flush=True)
        torch.manual_seed(seed)
        model = make()
        params = sum(p.numel() for p in model.parameters())
        timer = fl.Timer()
        log = train(model, settings, train_x, train_y, seed)
        train_seconds, train_cpu_seconds = timer.seconds(), timer.cpu_seconds()
        path = os.path.join(args.out, name + ".onnx")
        materialized = export(model, path)
        summary = fl.check_onnx(path)

        timer = fl.Timer()
        ref = fl.OnnxReference(path)
        onnx_logits = logits_in_batches(ref.run, test_in)
        torch_logits = logits_in_batches(model, test_in)
        max_diff = float((onnx_logits - torch_logits).abs().max())
        assert max_diff < 1e-3, f"{name}: exported graph differs from the module by {max_diff}"
        full = fl.classifier_figures(onnx_logits, test_y)
        held = fl.classifier_figures(onnx_logits[:HELDOUT_COUNT], test_y[:HELDOUT_COUNT])
        calib = fl.classifier_figures(logits_in_batches(ref.run, fl.to_input(train_x[calib_idx])), train_y[calib_idx])
        eval_seconds = timer.seconds()
        print(f"{name}: {params} parameters, trained in {train_seconds} s ({train_cpu_seconds} CPU s); test {full['correct']}/10000 = "
              f"{full['accuracy']:.4f}, CE {full['mean_cross_entropy']:.5f}; held-out {held['correct']}/2000 = "
              f"{held['accuracy']:.4f}, CE {held['mean_cross_entropy']:.5f}; calib {calib['correct']}/1000; "
              f"ONNX vs module max |diff| {max_diff:.2e}; {summary['bytes']} bytes; ops {summary['op_types']}", flush=True)
        meta["models"][name] = {
            "file": name + ".onnx",
            "architecture": str(model),
            "parameters": params,
            "seed": seed,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "training": dict(settings, optimizer="AdamW + OneCycleLR", data="Fashion-MNIST train (60000)",
                             loss="cross-entropy"),
            "training_log": log,
            "training_seconds": train_seconds,
            "training_cpu_seconds": train_cpu_seconds,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "onnx": summary,
            "onnx_vs_module_max_abs_diff": max_diff,
            "export": "torch.onnx.export(opset %d, do_constant_folding=True, training=TrainingMode.PRESERVE, model in "
                      "eval mode): BatchNormalization nodes stay in the graph. Initializers the exporter had "
                      "deduplicated into Identity nodes were copied back: %s" % (fl.OPSET, materialized or "none"),
            "reference": {
                "how": "exported ONNX graph run by fixture_lib.OnnxReference (PyTorch ops, float32); "
                       "accuracy = argmax == label, cross-entropy = mean natural-log softmax NLL",
                "test_10000": full, "heldout_2000": held, "calib_1000": calib,
                "heldout_first4_logits": onnx_logits[:4].tolist(),
                "heldout_first4_labels": test_y[:4].tolist(),
                "seconds": eval_seconds,
            },
        }
        fl.write_json(json_path, dict(meta, generator="scripts/train_image_fixtures.py", torch=torch.__version__,
                                      opset=fl.OPSET))


if __name__ == "__main__":
    main()
