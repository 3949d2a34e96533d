#!/usr/bin/env python3
"""Export small PyTorch models to ONNX as structure-analysis fixtures for Whittle's tests.

Run with Debian's PyTorch (apt-get install -y python3-torch; torch 1.13, CPU):

    /usr/bin/python3 scripts/make_structure_fixtures.py [out_dir]

Writes into tests/Whittle.Tests/Fixtures/ by default:

  resnet_cifar.onnx     CIFAR-style ResNet (stem + 3 stages of one basic block, widths 8/16/32),
                        eval mode, constant folding: torch fuses every BatchNorm into the conv before it.
  resnet_cifar_bn.onnx  the same network and weights exported with TrainingMode.PRESERVE (model in
                        eval mode), which skips the eval-mode Conv+BN fusion: BatchNormalization nodes remain.
  vgg_cifar.onnx        VGG-style CNN with BatchNorm (eval mode, so BN is folded like resnet_cifar).
  mlp.onnx              784 -> 64 -> ReLU -> 32 -> GELU -> 10.
  gpt2_tiny.onnx        GPT-2-style decoder (2 blocks, d=32, 4 heads, tied LM head, vocab 256).
  llama_tiny.onnx       Llama-style decoder (2 blocks, d=32, 4 query / 2 KV heads, RMSNorm, RoPE, SwiGLU).
  fixtures.json         independent counts computed here in PyTorch (layers, per-layer MACs at batch 1,
                        parameters) and counts read back from the exported ONNX files.

Weights are random (fixed seed): these fixtures test graph structure and MAC counts, not accuracy.
The ONNX files are read back with a tiny protobuf reader below, so the onnx package is not needed.
"""
import json
import math
import os
import sys
from collections import Counter

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 20240601
OPSET = 14
LM_VOCAB = 256          # byte-level: matches Whittle.Data's byte fallback tokenizer
LM_MAX_SEQ = 64
LM_SEQ = 16             # sequence length used for MAC counts and the reference run


# ---------------------------------------------------------------- models

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
        s = x if self.shortcut is None else self.shortcut(x)
        return F.relu(y + s)


class ResNetCifar(nn.Module):
    def __init__(self, widths=(8, 16, 32), classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        blocks, cin = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(cin, w, 1 if i == 0 else 2))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class VggCifar(nn.Module):
    def __init__(self, widths=(8, 16, 32), hidden=64, classes=10):
        super().__init__()
        layers, cin = [], 3
        for w in widths:
            for _ in range(2):
                layers += [nn.Conv2d(cin, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
                cin = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        side = 32 // 2 ** len(widths)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(cin * side * side, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 64)
        self.fc2 = nn.Linear(64, 32)
        self.fc3 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc3(F.gelu(self.fc2(F.relu(self.fc1(x)))))


class AttentionMacs:
    """Collects QK^T and AV matmul MACs of hand-written attention (per forward)."""
    total = 0
    per_layer = []

    @classmethod
    def reset(cls):
        cls.total, cls.per_layer = 0, []

    @classmethod
    def add(cls, name, q, k):
        # q: [B, H, T, hd], k: [B, H, S, hd]; QK^T and AV each cost B*H*T*S*hd MACs.
        b, h, t, hd = q.shape
        s = k.shape[2]
        macs = int(2 * b * h * t * s * hd)
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return
        cls.total += macs
        cls.per_layer.append({"name": name, "macs": macs})


class Gpt2Attention(nn.Module):
    def __init__(self, d, heads, max_seq, name):
        super().__init__()
        self.heads, self.name = heads, name
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)
        self.register_buffer("mask", torch.tril(torch.ones(max_seq, max_seq, dtype=torch.bool)).view(1, 1, max_seq, max_seq))

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads
        q, k, v = self.c_attn(x).split(d, dim=2)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        AttentionMacs.add(self.name, q, k)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
        att = att.masked_fill(~self.mask[:, :, :t, :t], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, d)
        return self.c_proj(y)


class Gpt2Block(nn.Module):
    def __init__(self, d, heads, max_seq, name):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = Gpt2Attention(d, heads, max_seq, name + ".attn")
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class Gpt2Tiny(nn.Module):
    def __init__(self, vocab=LM_VOCAB, d=32, heads=4, layers=2, max_seq=LM_MAX_SEQ):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(max_seq, d)
        self.h = nn.ModuleList([Gpt2Block(d, heads, max_seq, f"h.{i}") for i in range(layers)])
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied, as in GPT-2

    def forward(self, input_ids):
        t = input_ids.shape[1]
        pos = torch.arange(t, dtype=torch.long, device=input_ids.device).unsqueeze(0)
        x = self.wte(input_ids) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


class RmsNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


class LlamaAttention(nn.Module):
    def __init__(self, d, heads, kv_heads, max_seq, name):
        super().__init__()
        self.heads, self.kv_heads, self.hd, self.name = heads, kv_heads, d // heads, name
        self.q_proj = nn.Linear(d, heads * self.hd, bias=False)
        self.k_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.v_proj = nn.Linear(d, kv_heads * self.hd, bias=False)
        self.o_proj = nn.Linear(heads * self.hd, d, bias=False)
        inv_freq = 1.0 / (10000 ** (torch.arange(0, self.hd, 2).float() / self.hd))
        freqs = torch.outer(torch.arange(max_seq).float(), inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", emb.cos())
        self.register_buffer("sin", emb.sin())
        self.register_buffer("mask", torch.tril(torch.ones(max_seq, max_seq, dtype=torch.bool)))

    def forward(self, x):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kv_heads, self.hd).transpose(1, 2)
        cos, sin = self.cos[:t], self.sin[:t]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.heads // self.kv_heads
        k = k[:, :, None].expand(b, self.kv_heads, rep, t, self.hd).reshape(b, self.heads, t, self.hd)
        v = v[:, :, None].expand(b, self.kv_heads, rep, t, self.hd).reshape(b, self.heads, t, self.hd)
        AttentionMacs.add(self.name, q, k)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.hd))
        att = att.masked_fill(~self.mask[:t, :t], float("-inf"))
        y = (F.softmax(att, dim=-1) @ v).transpose(1, 2).reshape(b, t, self.heads * self.hd)
        return self.o_proj(y)


class LlamaBlock(nn.Module):
    def __init__(self, d, heads, kv_heads, hidden, max_seq, name):
        super().__init__()
        self.input_layernorm = RmsNorm(d)
        self.self_attn = LlamaAttention(d, heads, kv_heads, max_seq, name + ".self_attn")
        self.post_attention_layernorm = RmsNorm(d)
        self.gate_proj = nn.Linear(d, hidden, bias=False)
        self.up_proj = nn.Linear(d, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class LlamaTiny(nn.Module):
    def __init__(self, vocab=LM_VOCAB, d=32, heads=4, kv_heads=2, hidden=64, layers=2, max_seq=LM_MAX_SEQ):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab, d)
        self.layers = nn.ModuleList([LlamaBlock(d, heads, kv_heads, hidden, max_seq, f"layers.{i}") for i in range(layers)])
        self.norm = RmsNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)  # untied, as in Llama

    def forward(self, input_ids):
        x = self.embed_tokens(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.lm_head(self.norm(x))


# ---------------------------------------------------------------- counting

def layer_macs(model, example):
    """Per-layer MACs of every nn.Conv2d and nn.Linear for one forward pass on `example`."""
    rows, hooks = [], []
    names = {m: n for n, m in model.named_modules()}

    def hook(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = output.numel() * (module.in_channels // module.groups) * kh * kw
            rows.append({"name": names[module], "kind": "Conv", "in_channels": module.in_channels,
                         "out_channels": module.out_channels, "kernel": [kh, kw], "stride": list(module.stride),
                         "groups": module.groups, "output_shape": list(output.shape), "macs": macs})
        else:
            tokens = inputs[0].numel() // module.in_features
            macs = module.out_features * module.in_features * tokens
            rows.append({"name": names[module], "kind": "Linear", "in_features": module.in_features,
                         "out_features": module.out_features, "tokens": tokens, "bias": module.bias is not None,
                         "macs": macs})

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            hooks.append(m.register_forward_hook(hook))
    AttentionMacs.reset()
    with torch.no_grad():
        out = model(example)
    for h in hooks:
        h.remove()
    return rows, out


# Minimal protobuf reader: enough of ModelProto/GraphProto/NodeProto to count nodes and initializers.

def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield field, value


def onnx_counts(path):
    data = open(path, "rb").read()
    graph, opsets = None, {}
    for f, v in _fields(data):
        if f == 7:
            graph = v
        elif f == 8:  # opset_import
            dom, ver = "", 0
            for g, w in _fields(v):
                if g == 1:
                    dom = bytes(w).decode()
                elif g == 2:
                    ver = w
            opsets[dom or "ai.onnx"] = ver
    nodes, inits, inputs, outputs = Counter(), [], [], []
    init_elems = 0
    for f, v in _fields(graph):
        if f == 1:
            op = next(bytes(w).decode() for g, w in _fields(v) if g == 4)
            nodes[op] += 1
        elif f == 5:
            dims = [w for g, w in _fields(v) if g == 1]
            name = next(bytes(w).decode() for g, w in _fields(v) if g == 8)
            inits.append(name)
            init_elems += math.prod(dims)
        elif f == 11:
            inputs.append(next(bytes(w).decode() for g, w in _fields(v) if g == 1))
        elif f == 12:
            outputs.append(next(bytes(w).decode() for g, w in _fields(v) if g == 1))
    return {
        "opset": opsets,
        "nodes": sum(nodes.values()),
        "initializers": len(inits),
        "initializer_elements": init_elems,
        "graph_inputs": inputs,
        "graph_outputs": outputs,
        "op_types": dict(sorted(nodes.items())),
    }


# ---------------------------------------------------------------- export

def export(name, model, example, input_name, out_dir, notes, training=torch.onnx.TrainingMode.EVAL, dynamic_seq=False):
    model.eval()
    path = os.path.join(out_dir, name + ".onnx")
    axes = {0: "batch", 1: "seq"} if dynamic_seq else {0: "batch"}
    out_axes = {0: "batch", 1: "seq"} if dynamic_seq else {0: "batch"}
    output_name = "logits"
    torch.onnx.export(model, (example,), path, opset_version=OPSET, do_constant_folding=True,
                      training=training, input_names=[input_name], output_names=[output_name],
                      dynamic_axes={input_name: axes, output_name: out_axes})
    rows, out = layer_macs(model, example)
    convs = [r for r in rows if r["kind"] == "Conv"]
    linears = [r for r in rows if r["kind"] == "Linear"]
    params = sum(p.numel() for p in model.parameters())  # shared (tied) tensors counted once
    counts = onnx_counts(path)
    entry = {
        "file": name + ".onnx",
        "input": {"name": input_name, "shape": list(example.shape), "dtype": str(example.dtype).replace("torch.", "")},
        "output": {"name": output_name, "shape": list(out.shape)},
        "conv_layers": len(convs),
        "linear_layers": len(linears),
        "conv_macs": sum(r["macs"] for r in convs),
        "linear_macs": sum(r["macs"] for r in linears),
        "total_macs": sum(r["macs"] for r in rows),
        "attention_matmul_macs": AttentionMacs.total,
        "attention_layers": list(AttentionMacs.per_layer),
        "parameters": params,
        "layers": rows,
        "onnx": counts,
        "batchnorm_in_onnx": counts["op_types"].get("BatchNormalization", 0),
        "notes": notes,
        "file_bytes": os.path.getsize(path),
    }
    print(f"{name}: {len(convs)} conv, {len(linears)} linear, {entry['total_macs']} MACs, {params} params, "
          f"{counts['nodes']} nodes, {counts['initializers']} initializers, {entry['file_bytes']} bytes, "
          f"BN nodes {entry['batchnorm_in_onnx']}")
    return entry


def randomize_bn(model, gen):
    """Non-trivial BatchNorm statistics so BN folding is not an identity."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)


def randomize_norms(model, gen):
    """Distinct LayerNorm/RMSNorm parameters, as in a trained model. At their initial values (all ones,
    all zeros) torch's exporter would deduplicate them into one shared initializer."""
    for m in model.modules():
        if isinstance(m, (nn.LayerNorm, RmsNorm)):
            with torch.no_grad():
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                if getattr(m, "bias", None) is not None:
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Whittle.Tests", "Fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    image = torch.rand(1, 3, 32, 32, generator=gen)
    ids = torch.randint(0, LM_VOCAB, (1, LM_SEQ), generator=gen)

    entries = {}
    resnet = ResNetCifar()
    randomize_bn(resnet, gen)
    entries["resnet_cifar"] = export(
        "resnet_cifar", resnet, image, "input", out_dir,
        "Eval mode + constant folding: torch's eval peephole fuses each BatchNorm into the preceding Conv "
        "(conv weights get a bias), so the graph has no BatchNormalization node.")
    entries["resnet_cifar_bn"] = export(
        "resnet_cifar_bn", resnet, image, "input", out_dir,
        "Same weights as resnet_cifar, exported with training=TrainingMode.PRESERVE (model in eval mode): "
        "the Conv+BN fusion is skipped, so BatchNormalization nodes (inference form, running statistics as "
        "initializers) follow the bias-free convs.",
        training=torch.onnx.TrainingMode.PRESERVE)
    vgg = VggCifar()
    randomize_bn(vgg, gen)
    entries["vgg_cifar"] = export(
        "vgg_cifar", vgg, image, "input", out_dir,
        "Eval mode + constant folding: BatchNorm fused into the convs (see resnet_cifar).")
    entries["mlp"] = export("mlp", Mlp(), torch.rand(1, 784, generator=gen), "input", out_dir,
                            "GELU is exported as its erf decomposition (no Gelu op before opset 20).")
    gpt2 = Gpt2Tiny()
    randomize_norms(gpt2, gen)
    entries["gpt2_tiny"] = export(
        "gpt2_tiny", gpt2, ids, "input_ids", out_dir,
        f"Vocab {LM_VOCAB} (byte-level), max {LM_MAX_SEQ} positions; batch and seq dynamic. LM head tied to wte: "
        "parameters counts the shared tensor once, while the ONNX graph holds it twice: wte.weight [256,32] for the "
        "Gather and a folded transpose [32,256] feeding the head MatMul. Linear layers export as MatMul(+Add) with "
        "pre-transposed weights [in,out] named onnx::MatMul_*. LayerNorm is decomposed (ReduceMean/Sub/Pow/Sqrt/Div; "
        "no LayerNormalization op before opset 17), GELU as Erf. The causal-mask buffers of both blocks are "
        "identical and deduplicated into one initializer.",
        dynamic_seq=True)
    llama = LlamaTiny()
    randomize_norms(llama, gen)
    entries["llama_tiny"] = export(
        "llama_tiny", llama, ids, "input_ids", out_dir,
        f"Vocab {LM_VOCAB}, 4 query heads / 2 KV heads (head dim 8), SwiGLU hidden 64, RoPE tables and causal "
        "mask as sliced initializers (identical in both blocks, so deduplicated into one each); batch and seq dynamic. "
        "Bias-free linears export as MatMul with pre-transposed weights [in,out] named onnx::MatMul_*; "
        "rsqrt exports as Sqrt + Div; SiLU as Sigmoid + Mul.",
        dynamic_seq=True)

    meta = {
        "generator": "scripts/make_structure_fixtures.py",
        "torch": torch.__version__,
        "seed": SEED,
        "opset": OPSET,
        "mac_convention": "batch 1 at the listed input shape; conv: output elements x Cin/groups x kh x kw; "
                          "linear: out_features x in_features x tokens (tokens = input elements / in_features). "
                          "total_macs = conv + linear; attention QK^T and AV matmuls are listed separately.",
        "models": entries,
    }
    with open(os.path.join(out_dir, "fixtures.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
