"""Shared pieces of the trained-fixture scripts (scripts/train_image_fixtures.py,
scripts/train_text_fixtures.py, scripts/make_hf_bert_fixture.py).

- IDX (gzip) reading and deterministic writing,
- the Moby Dick split (train = first 90 % of the bytes, cut after a newline),
- a reference interpreter that runs an exported ONNX graph with PyTorch ops (float32), so that every
  recorded figure comes from the exported graph itself (ONNX Runtime is not available to Debian's python),
- ONNX post-processing (readable initializer names, metadata_props, checks),
- a safetensors writer and reader (no external library),
- bookkeeping: JSON writing, timing.
"""
import gzip
import hashlib
import io
import json
import math
import os
import struct
import time

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FIXTURES = os.path.join(REPO, "fixtures")
FASHION_DIR = "/usr/share/datasets/fashion-mnist"
MOBY_DICK = os.path.join(REPO, "data", "moby-dick.txt")
MOBY_DICK_BYTES = 1204997
MOBY_DICK_SHA256 = "fe282a57094ed62e7144fb7c804a9748fc1c909bf3b49d06e7276015f9f67240"
OPSET = 17


def rel(path):
    return os.path.relpath(path, REPO)


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_json(path):
    with open(path) as f:
        return json.load(f)


def _json(obj, indent):
    """JSON with one item per line, except that lists of numbers or strings stay on one line."""
    pad, inner = " " * indent, " " * (indent + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {_json(v, indent + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
        return "[\n" + ",\n".join(inner + _json(v, indent + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj)


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(_json(obj, 0))
        f.write("\n")
    os.replace(tmp, path)


def update_json(path, new, **top):
    """Re-reads `path` and merges `new` into it: top-level keys replaced, except "models", merged by model."""
    old = read_json(path) if os.path.exists(path) else {}
    models = dict(old.get("models", {}))
    models.update(new.get("models", {}))
    merged = dict(old)
    merged.update(top)
    merged.update({k: v for k, v in new.items() if k != "models"})
    merged["models"] = dict(sorted(models.items()))
    write_json(path, merged)


class Timer:
    """Wall-clock and process CPU seconds (all threads) since construction."""

    def __init__(self):
        self.start, self.cpu_start = time.time(), time.process_time()

    def seconds(self):
        return round(time.time() - self.start, 1)

    def cpu_seconds(self):
        return round(time.process_time() - self.cpu_start, 1)


# ---------------------------------------------------------------- IDX

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    zero, type_code, ndim = struct.unpack(">HBB", data[:4])
    assert zero == 0, f"{path}: not an IDX file"
    shape = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=_IDX_TYPES[type_code], offset=4 + 4 * ndim).reshape(shape)


def write_idx_gz(path, array):
    """uint8 IDX, gzip with mtime 0 and no file name, so the bytes depend only on the array."""
    assert array.dtype == np.uint8
    raw = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes()
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as g:
        g.write(raw)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(buf.getvalue())


def fashion_mnist(split):
    """split 'train' or 't10k' -> (uint8 images [N,28,28], uint8 labels [N])."""
    images = read_idx(os.path.join(FASHION_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(FASHION_DIR, f"{split}-labels-idx1-ubyte.gz"))
    return images, labels


def to_input(images_u8):
    """The image models' preprocessing: float32 [N,1,28,28] = pixel / 255."""
    return torch.from_numpy(images_u8.astype(np.float32) / np.float32(255)).unsqueeze(1)


# ---------------------------------------------------------------- text

def moby_dick_split():
    """(text bytes, cut): train = text[:cut], held-out = text[cut:], where cut is just past the first
    newline at or after floor(0.9 * len(text))."""
    with open(MOBY_DICK, "rb") as f:
        text = f.read()
    if len(text) != MOBY_DICK_BYTES or hashlib.sha256(text).hexdigest() != MOBY_DICK_SHA256:
        raise SystemExit(f"{MOBY_DICK}: not the recorded corpus; run scripts/fetch_data.sh")
    cut = text.index(b"\n", (len(text) * 9) // 10) + 1
    return text, cut


def excerpt_bounds(text, start, approx=16384):
    """[start, end) with end just past the first newline at or after start + approx."""
    return start, text.index(b"\n", start + approx) + 1


# ---------------------------------------------------------------- evaluation conventions

def classifier_figures(logits, labels):
    """top-1 correct count and mean natural-log cross-entropy, in float32 accumulated in float64."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    correct = int((logits.argmax(1) == labels).sum())
    nll = F.cross_entropy(logits.float(), labels, reduction="none").double()
    n = len(labels)
    return {"examples": n, "correct": correct, "accuracy": correct / n, "mean_cross_entropy": float(nll.mean())}


def windows(data, t=128):
    """Non-overlapping windows of t tokens (bytes), incomplete tail dropped -> int64 [W, t]."""
    n = len(data) // t
    return torch.from_numpy(np.frombuffer(data[:n * t], dtype=np.uint8).astype(np.int64).reshape(n, t))


def lm_figures(run_logits, data, t=128, batch=32):
    """Perplexity convention: every window predicts its tokens 1..t-1 from the prefix;
    perplexity = exp(mean NLL over all predicted tokens). run_logits: int64 [B,t] -> float32 [B,t,256]."""
    ids = windows(data, t)
    total, count = 0.0, 0
    for i in range(0, len(ids), batch):
        x = ids[i:i + batch]
        logits = run_logits(x)
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1), reduction="none")
        total += float(nll.double().sum())
        count += nll.numel()
    return {"windows": len(ids), "window_tokens": t, "predicted_tokens": count, "nll_sum": total,
            "mean_nll": total / count, "perplexity": math.exp(total / count),
            "bits_per_byte": total / count / math.log(2)}


# ---------------------------------------------------------------- ONNX reference interpreter

_ONNX_TO_TORCH = {
    onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.DOUBLE: torch.float64,
    onnx.TensorProto.INT64: torch.int64, onnx.TensorProto.INT32: torch.int32,
    onnx.TensorProto.BOOL: torch.bool, onnx.TensorProto.UINT8: torch.uint8, onnx.TensorProto.INT8: torch.int8,
}


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _ints(t):
    return [int(v) for v in t.tolist()]


class OnnxReference:
    """Runs an ONNX graph (the ops torch's exporter emits for the fixture models) with PyTorch ops.
    Unknown ops raise, so the graph is either run faithfully or not at all."""

    def __init__(self, path):
        self.model = onnx.load(path)
        g = self.model.graph
        self.inits = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in g.initializer}
        self.inputs = [i.name for i in g.input if i.name not in self.inits]
        self.outputs = [o.name for o in g.output]

    @torch.no_grad()
    def run(self, *args):
        env = dict(self.inits)
        env.update(zip(self.inputs, args))
        env[""] = None
        for node in self.model.graph.node:
            ins = [env[n] if n else None for n in node.input]
            outs = getattr(self, "op_" + node.op_type)(ins, _attrs(node))
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for name, value in zip(node.output, outs):
                env[name] = value
        res = [env[o] for o in self.outputs]
        return res[0] if len(res) == 1 else res

    # elementwise
    def op_Add(self, i, a): return i[0] + i[1]
    def op_Sub(self, i, a): return i[0] - i[1]
    def op_Mul(self, i, a): return i[0] * i[1]
    def op_Div(self, i, a):
        return torch.div(i[0], i[1], rounding_mode="trunc") if not i[0].is_floating_point() else i[0] / i[1]
    def op_Pow(self, i, a): return torch.pow(i[0], i[1])
    def op_Sqrt(self, i, a): return torch.sqrt(i[0])
    def op_Reciprocal(self, i, a): return torch.reciprocal(i[0])
    def op_Neg(self, i, a): return -i[0]
    def op_Relu(self, i, a): return torch.relu(i[0])
    def op_Tanh(self, i, a): return torch.tanh(i[0])
    def op_Erf(self, i, a): return torch.erf(i[0])
    def op_Sigmoid(self, i, a): return torch.sigmoid(i[0])
    def op_Equal(self, i, a): return i[0] == i[1]
    def op_Less(self, i, a): return i[0] < i[1]
    def op_Greater(self, i, a): return i[0] > i[1]
    def op_Not(self, i, a): return ~i[0]
    def op_Where(self, i, a): return torch.where(i[0], i[1], i[2])
    def op_Identity(self, i, a): return i[0]
    def op_Cast(self, i, a): return i[0].to(_ONNX_TO_TORCH[a["to"]])

    def op_Softmax(self, i, a): return torch.softmax(i[0], dim=a.get("axis", -1))

    def op_MatMul(self, i, a): return torch.matmul(i[0], i[1])

    def op_Gemm(self, i, a):
        x = i[0].t() if a.get("transA", 0) else i[0]
        w = i[1].t() if a.get("transB", 0) else i[1]
        y = a.get("alpha", 1.0) * (x @ w)
        if len(i) > 2 and i[2] is not None:
            y = y + a.get("beta", 1.0) * i[2]
        return y

    # shapes
    def op_Shape(self, i, a):
        s = torch.tensor(i[0].shape, dtype=torch.int64)
        return s[a.get("start", 0):a["end"]] if "end" in a else s[a.get("start", 0):]

    def op_Constant(self, i, a):
        if "value" in a:
            return torch.from_numpy(onnx.numpy_helper.to_array(a["value"]).copy())
        raise NotImplementedError(f"Constant with {list(a)}")

    def op_ConstantOfShape(self, i, a):
        v = torch.from_numpy(onnx.numpy_helper.to_array(a["value"]).copy()) if "value" in a else torch.zeros(1)
        return v.reshape(()).expand(_ints(i[0])).clone() if i[0].numel() else v.reshape(())

    def op_Gather(self, i, a):
        axis = a.get("axis", 0)
        idx = i[1].long()
        idx = torch.where(idx < 0, idx + i[0].shape[axis], idx)
        out = torch.index_select(i[0], axis, idx.reshape(-1))
        return out.reshape(i[0].shape[:axis] + idx.shape + i[0].shape[axis + 1:])

    def op_Unsqueeze(self, i, a):
        x = i[0]
        axes = sorted(_ints(i[1]) if len(i) > 1 else a["axes"])
        rank = x.dim() + len(axes)
        for ax in sorted(ax % rank for ax in axes):
            x = x.unsqueeze(ax)
        return x

    def op_Squeeze(self, i, a):
        x = i[0]
        axes = _ints(i[1]) if len(i) > 1 and i[1] is not None else a.get("axes")
        if axes is None:
            return x.squeeze()
        for ax in sorted((ax % x.dim() for ax in axes), reverse=True):
            x = x.squeeze(ax)
        return x

    def op_Concat(self, i, a): return torch.cat(i, dim=a["axis"])

    def op_Reshape(self, i, a):
        shape = _ints(i[1])
        if not a.get("allowzero", 0):
            shape = [i[0].shape[k] if s == 0 else s for k, s in enumerate(shape)]
        return i[0].reshape(shape)

    def op_Flatten(self, i, a):
        ax = a.get("axis", 1)
        return i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)

    def op_Transpose(self, i, a): return i[0].permute(a.get("perm", list(range(i[0].dim()))[::-1]))

    def op_Expand(self, i, a):
        shape = _ints(i[1])
        x = i[0]
        rank = max(len(shape), x.dim())
        xs = [1] * (rank - x.dim()) + list(x.shape)
        shape = [1] * (rank - len(shape)) + shape
        target = [max(u, v) if min(u, v) == 1 else u for u, v in zip(xs, shape)]
        return x.reshape(xs).expand(target)

    def op_Slice(self, i, a):
        x = i[0]
        starts, ends = _ints(i[1]), _ints(i[2])
        axes = _ints(i[3]) if len(i) > 3 and i[3] is not None else list(range(len(starts)))
        steps = _ints(i[4]) if len(i) > 4 and i[4] is not None else [1] * len(starts)
        idx = [slice(None)] * x.dim()
        for s, e, ax, st in zip(starts, ends, axes, steps):
            assert st == 1, "Slice with step != 1"
            n = x.shape[ax]
            s = max(0, min(n, s + n if s < 0 else s))
            e = max(0, min(n, e + n if e < 0 else e))
            idx[ax] = slice(s, e)
        return x[tuple(idx)]

    def op_Split(self, i, a):
        ax = a.get("axis", 0)
        sizes = _ints(i[1]) if len(i) > 1 and i[1] is not None else a.get("split")
        if sizes is None:
            n = a["num_outputs"]
            sizes = [i[0].shape[ax] // n] * n
        return list(torch.split(i[0], sizes, dim=ax))

    def op_Range(self, i, a): return torch.arange(i[0].item(), i[1].item(), i[2].item(), dtype=i[0].dtype)

    def op_Trilu(self, i, a):
        k = int(i[1].item()) if len(i) > 1 and i[1] is not None else 0
        return torch.triu(i[0], k) if a.get("upper", 1) else torch.tril(i[0], k)

    def op_ReduceMean(self, i, a):
        return i[0].mean(dim=a["axes"], keepdim=bool(a.get("keepdims", 1)))

    # networks
    def op_Conv(self, i, a):
        k = len(a.get("kernel_shape", i[1].shape[2:]))
        pads = a.get("pads", [0] * 2 * k)
        assert pads[:k] == pads[k:], "asymmetric pads"
        return F.conv2d(i[0], i[1], i[2] if len(i) > 2 else None, stride=a.get("strides", [1] * k),
                        padding=pads[:k], dilation=a.get("dilations", [1] * k), groups=a.get("group", 1))

    def op_BatchNormalization(self, i, a):
        x, scale, bias, mean, var = i
        shape = [1, -1] + [1] * (x.dim() - 2)
        inv = torch.rsqrt(var + a.get("epsilon", 1e-5)).reshape(shape)
        return (x - mean.reshape(shape)) * inv * scale.reshape(shape) + bias.reshape(shape)

    def op_MaxPool(self, i, a):
        k = a["kernel_shape"]
        pads = a.get("pads", [0] * 2 * len(k))
        assert pads[:len(k)] == pads[len(k):]
        return F.max_pool2d(i[0], k, a.get("strides", k), pads[:len(k)], ceil_mode=bool(a.get("ceil_mode", 0)))

    def op_GlobalAveragePool(self, i, a): return i[0].mean(dim=(2, 3), keepdim=True)

    def op_LayerNormalization(self, i, a):
        x = i[0]
        axis = a.get("axis", -1) % x.dim()
        return F.layer_norm(x, x.shape[axis:], i[1], i[2] if len(i) > 2 else None, a.get("epsilon", 1e-5))


def op_counts(path):
    model = onnx.load(path)
    counts = {}
    for n in model.graph.node:
        counts[n.op_type] = counts.get(n.op_type, 0) + 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------- ONNX post-processing

def name_transposed_initializers(path, named_params):
    """torch's exporter folds W^T of bias-free / 3-D nn.Linear weights into anonymous initializers
    (onnx::MatMul_*). Rename each to '<parameter>.T' when it equals exactly one parameter's transpose,
    so Whittle's reports show which layer a weight belongs to."""
    model = onnx.load(path)
    by_shape = {}
    for name, p in named_params:
        if p.dim() == 2:
            by_shape.setdefault(tuple(p.shape[::-1]), []).append((name, p.detach().t().contiguous().numpy()))
    renames = {}
    for init in model.graph.initializer:
        if not init.name.startswith("onnx::"):
            continue
        value = onnx.numpy_helper.to_array(init)
        hits = [n for n, t in by_shape.get(value.shape, []) if np.array_equal(t, value)]
        if len(hits) == 1:
            renames[init.name] = hits[0] + ".T"
    for init in model.graph.initializer:
        if init.name in renames:
            init.name = renames[init.name]
    for node in model.graph.node:
        for k, n in enumerate(node.input):
            if n in renames:
                node.input[k] = renames[n]
    onnx.save(model, path)
    return renames


def materialize_shared_initializers(path):
    """torch's exporter deduplicates bit-identical parameters into `Identity(initializer)` nodes (a ResNet's
    residual-branch and shortcut BatchNorm biases receive identical gradients from zero, so they stay equal).
    Give every such output its own initializer again, so each layer reads its parameters directly."""
    model = onnx.load(path)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    keep, copies = [], []
    for node in g.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            t = onnx.TensorProto()
            t.CopyFrom(inits[node.input[0]])
            t.name = node.output[0]
            copies.append(t)
        else:
            keep.append(node)
    if copies:
        del g.node[:]
        g.node.extend(keep)
        g.initializer.extend(copies)
        onnx.save(model, path)
    return [t.name for t in copies]


def set_metadata(path, props):
    model = onnx.load(path)
    del model.metadata_props[:]
    for k, v in props.items():
        model.metadata_props.add(key=k, value=v)
    model.producer_name = "whittle/scripts (torch " + torch.__version__ + ")"
    onnx.save(model, path)


def check_onnx(path):
    """onnx.checker (full) and a summary of the graph."""
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph

    def dims(v):
        return [d.dim_param if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim]

    return {
        "opset": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "ir_version": model.ir_version,
        "nodes": len(g.node),
        "initializers": len(g.initializer),
        "initializer_elements": int(sum(np.prod(t.dims) for t in g.initializer)),
        "inputs": {i.name: dims(i) for i in g.input},
        "outputs": {o.name: dims(o) for o in g.output},
        "op_types": op_counts(path),
        "metadata_props": {p.key: p.value for p in model.metadata_props},
        "bytes": os.path.getsize(path),
        "sha256": sha256_file(path),
    }


# ---------------------------------------------------------------- safetensors

def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> float32 numpy array. Format: u64 LE header length, JSON header
    {name: {dtype, shape, data_offsets [begin, end) into the data}}, padded with spaces to a multiple
    of 8, then the raw little-endian data (tensors in name order, contiguous)."""
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        assert a.dtype == np.float32, name
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in chunks:
            f.write(b)
    os.replace(path + ".tmp", path)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32"
        b, e = info["data_offsets"]
        out[name] = np.frombuffer(data[base + b:base + e], dtype="<f4").reshape(info["shape"])
    return out
