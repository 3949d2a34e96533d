#!/usr/bin/env python3
"""Tiny Hugging Face checkpoints and PyTorch reference outputs for the importer tests.

Writes tests/Whittle.Tests/Import/Fixtures/hf/{llama,qwen2,gpt2,bert}/ with config.json, the weights as
safetensors (written here byte by byte, no safetensors package) and reference.npz: the inputs and the outputs of
an independent float64 PyTorch implementation that follows transformers' modeling code (LlamaForCausalLM with
rotate_half RoPE, repeat_kv and llama3 RoPE scaling; Qwen2 with q/k/v biases, explicit head_dim, tied embeddings;
GPT2LMHeadModel with Conv1D [in, out] weights, fused c_attn and gelu_new; BertModel with padding mask, token types
and pooler). Coverage of storage formats: llama F32 single file, qwen2 BF16 in two shards with an index, gpt2 F16,
bert F32 with old-style gamma/beta LayerNorm names in the embeddings.

Run with Debian's python3 (torch 1.13, numpy):  /usr/bin/python3 scripts/make_hf_import_fixtures.py
"""
import json
import math
import os
import struct

import numpy as np
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "Whittle.Tests", "Import", "Fixtures", "hf")
DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (None, 2)}


def stored(t, dtype):
    """The tensor as it is stored (rounded to dtype) and back as float64, plus its bytes."""
    t = t.detach().to(torch.float32)
    if dtype == "F32":
        return t.double(), t.numpy().tobytes()
    if dtype == "F16":
        h = t.to(torch.float16)
        return h.double(), h.numpy().tobytes()
    b = t.to(torch.bfloat16)
    return b.double(), b.view(torch.int16).numpy().tobytes()


def write_safetensors(path, tensors, dtype):
    """tensors: list of (name, float tensor); returns {name: float64 tensor as stored}."""
    header, blobs, offset, rounded = {}, [], 0, {}
    for name, t in tensors:
        r, raw = stored(t, dtype)
        rounded[name] = r
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for raw in blobs:
            f.write(raw)
    return rounded


def save(name, config, tensors, dtype, shards=1):
    d = os.path.join(ROOT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    if shards == 1:
        return write_safetensors(os.path.join(d, "model.safetensors"), tensors, dtype), d
    per = math.ceil(len(tensors) / shards)
    rounded, weight_map = {}, {}
    for s in range(shards):
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = tensors[s * per:(s + 1) * per]
        rounded.update(write_safetensors(os.path.join(d, fname), part, dtype))
        weight_map.update({n: fname for n, _ in part})
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": 0}, "weight_map": weight_map}, f, indent=2)
    return rounded, d


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    return torch.nn.functional.layer_norm(x, (x.shape[-1],), w, b, eps)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def inv_freq(hd, theta, scaling):
    f = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.int64).float() / hd))
    if scaling and scaling["rope_type"] == "llama3":
        factor, low, high, orig = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"], scaling["original_max_position_embeddings"]
        wavelen = 2 * math.pi / f
        out = torch.where(wavelen > orig / low, f / factor, f)
        smooth = (orig / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * out / factor + smooth * out
        medium = ~(wavelen < orig / high) * ~(wavelen > orig / low)
        f = torch.where(medium, smoothed, out)
    return f.double()


def llama_forward(W, c, ids):
    B, S = ids.shape
    d, H = c["hidden_size"], c["num_attention_heads"]
    kvh = c.get("num_key_value_heads", H)
    hd = c.get("head_dim", d // H)
    eps = c["rms_norm_eps"]
    bias = c.get("attention_bias", False)
    x = W["model.embed_tokens.weight"][ids]
    f = inv_freq(hd, c.get("rope_theta", 10000.0), c.get("rope_scaling"))
    pos = torch.arange(S, dtype=torch.float64)
    emb = torch.cat([torch.outer(pos, f)] * 2, dim=-1)
    cos, sin = emb.cos(), emb.sin()
    mask = torch.full((S, S), float("-inf"), dtype=torch.float64).triu(1)
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        lin = lambda m, v: v @ W[p + m + ".weight"].T + (W[p + m + ".bias"] if bias and m[-6:] in ("q_proj", "k_proj", "v_proj") else 0)
        h = rms_norm(x, W[p + "input_layernorm.weight"], eps)
        q = lin("self_attn.q_proj", h).view(B, S, H, hd).transpose(1, 2)
        k = lin("self_attn.k_proj", h).view(B, S, kvh, hd).transpose(1, 2)
        v = lin("self_attn.v_proj", h).view(B, S, kvh, hd).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = k.repeat_interleave(H // kvh, dim=1), v.repeat_interleave(H // kvh, dim=1)
        a = torch.softmax(q @ k.transpose(2, 3) * hd ** -0.5 + mask, dim=-1) @ v
        x = x + a.transpose(1, 2).reshape(B, S, H * hd) @ W[p + "self_attn.o_proj.weight"].T
        h = rms_norm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = h @ W[p + "mlp.gate_proj.weight"].T
        x = x + (torch.nn.functional.silu(g) * (h @ W[p + "mlp.up_proj.weight"].T)) @ W[p + "mlp.down_proj.weight"].T
    x = rms_norm(x, W["model.norm.weight"], eps)
    head = W["model.embed_tokens.weight"] if c.get("tie_word_embeddings", False) else W["lm_head.weight"]
    return x @ head.T


def llama_tensors(g, c, scale):
    d, H = c["hidden_size"], c["num_attention_heads"]
    kvh = c.get("num_key_value_heads", H)
    hd = c.get("head_dim", d // H)
    F, V = c["intermediate_size"], c["vocab_size"]
    n = lambda *shape: torch.randn(*shape, generator=g) * scale
    t = [("model.embed_tokens.weight", torch.randn(V, d, generator=g))]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t.append((p + "input_layernorm.weight", 1 + 0.1 * torch.randn(d, generator=g)))
        t += [(p + "self_attn.q_proj.weight", n(H * hd, d)), (p + "self_attn.k_proj.weight", n(kvh * hd, d)), (p + "self_attn.v_proj.weight", n(kvh * hd, d))]
        if c.get("attention_bias", False):
            t += [(p + "self_attn.q_proj.bias", n(H * hd)), (p + "self_attn.k_proj.bias", n(kvh * hd)), (p + "self_attn.v_proj.bias", n(kvh * hd))]
        t.append((p + "self_attn.o_proj.weight", n(d, H * hd)))
        t.append((p + "post_attention_layernorm.weight", 1 + 0.1 * torch.randn(d, generator=g)))
        t += [(p + "mlp.gate_proj.weight", n(F, d)), (p + "mlp.up_proj.weight", n(F, d)), (p + "mlp.down_proj.weight", n(d, F))]
    t.append(("model.norm.weight", 1 + 0.1 * torch.randn(d, generator=g)))
    if not c.get("tie_word_embeddings", False):
        t.append(("lm_head.weight", n(V, d)))
    return t


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def gpt2_forward(W, c, ids):
    B, S = ids.shape
    d, H = c["n_embd"], c["n_head"]
    hd, eps = d // H, c["layer_norm_epsilon"]
    x = W["transformer.wte.weight"][ids] + W["transformer.wpe.weight"][torch.arange(S)]
    mask = torch.ones(S, S, dtype=torch.bool).tril()
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        conv = lambda m, v: v @ W[p + m + ".weight"] + W[p + m + ".bias"]
        a = layer_norm(x, W[p + "ln_1.weight"], W[p + "ln_1.bias"], eps)
        q, k, v = conv("attn.c_attn", a).split(d, dim=2)
        q, k, v = (t.view(B, S, H, hd).transpose(1, 2) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / (hd ** 0.5)
        s = torch.where(mask, s, torch.tensor(torch.finfo(s.dtype).min, dtype=s.dtype))
        o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, S, d)
        x = x + conv("attn.c_proj", o)
        m = layer_norm(x, W[p + "ln_2.weight"], W[p + "ln_2.bias"], eps)
        x = x + conv("mlp.c_proj", gelu_new(conv("mlp.c_fc", m)))
    x = layer_norm(x, W["transformer.ln_f.weight"], W["transformer.ln_f.bias"], eps)
    return x @ W["transformer.wte.weight"].T


def gpt2_tensors(g, c, scale):
    d, V, P = c["n_embd"], c["vocab_size"], c["n_positions"]
    F = c.get("n_inner") or 4 * d
    n = lambda *shape: torch.randn(*shape, generator=g) * scale
    t = [("transformer.wte.weight", torch.randn(V, d, generator=g)), ("transformer.wpe.weight", 0.5 * torch.randn(P, d, generator=g))]
    for i in range(c["n_layer"]):
        p = f"transformer.h.{i}."
        t += [(p + "ln_1.weight", 1 + 0.1 * torch.randn(d, generator=g)), (p + "ln_1.bias", n(d)),
              (p + "attn.c_attn.weight", n(d, 3 * d)), (p + "attn.c_attn.bias", n(3 * d)),
              (p + "attn.c_proj.weight", n(d, d)), (p + "attn.c_proj.bias", n(d)),
              (p + "ln_2.weight", 1 + 0.1 * torch.randn(d, generator=g)), (p + "ln_2.bias", n(d)),
              (p + "mlp.c_fc.weight", n(d, F)), (p + "mlp.c_fc.bias", n(F)),
              (p + "mlp.c_proj.weight", n(F, d)), (p + "mlp.c_proj.bias", n(d))]
    t += [("transformer.ln_f.weight", 1 + 0.1 * torch.randn(d, generator=g)), ("transformer.ln_f.bias", n(d))]
    return t


def bert_forward(W, c, ids, mask, types):
    B, S = ids.shape
    d, H = c["hidden_size"], c["num_attention_heads"]
    hd, eps = d // H, c["layer_norm_eps"]
    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][torch.arange(S)] + W["embeddings.token_type_embeddings.weight"][types]
    x = layer_norm(x, W["embeddings.LayerNorm.gamma"], W["embeddings.LayerNorm.beta"], eps)
    ext = (1.0 - mask[:, None, None, :].double()) * torch.finfo(torch.float64).min
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        lin = lambda m, v: v @ W[p + m + ".weight"].T + W[p + m + ".bias"]
        q, k, v = (lin("attention.self." + m, x).view(B, S, H, hd).transpose(1, 2) for m in ("query", "key", "value"))
        a = (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + ext, dim=-1) @ v).transpose(1, 2).reshape(B, S, d)
        x = layer_norm(lin("attention.output.dense", a) + x, W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"], eps)
        i_ = torch.nn.functional.gelu(lin("intermediate.dense", x))
        x = layer_norm(lin("output.dense", i_) + x, W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], eps)
    pooled = torch.tanh(x[:, 0] @ W["pooler.dense.weight"].T + W["pooler.dense.bias"])
    return x, pooled


def bert_tensors(g, c, scale):
    d, V, F = c["hidden_size"], c["vocab_size"], c["intermediate_size"]
    n = lambda *shape: torch.randn(*shape, generator=g) * scale
    t = [("embeddings.word_embeddings.weight", torch.randn(V, d, generator=g)),
         ("embeddings.position_embeddings.weight", 0.5 * torch.randn(c["max_position_embeddings"], d, generator=g)),
         ("embeddings.token_type_embeddings.weight", 0.5 * torch.randn(c["type_vocab_size"], d, generator=g)),
         ("embeddings.LayerNorm.gamma", 1 + 0.1 * torch.randn(d, generator=g)), ("embeddings.LayerNorm.beta", n(d))]
    for i in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t += [(p + m + ".weight", n(d, d)), (p + m + ".bias", n(d))]
        t += [(p + "attention.output.LayerNorm.weight", 1 + 0.1 * torch.randn(d, generator=g)), (p + "attention.output.LayerNorm.bias", n(d)),
              (p + "intermediate.dense.weight", n(F, d)), (p + "intermediate.dense.bias", n(F)),
              (p + "output.dense.weight", n(d, F)), (p + "output.dense.bias", n(d)),
              (p + "output.LayerNorm.weight", 1 + 0.1 * torch.randn(d, generator=g)), (p + "output.LayerNorm.bias", n(d))]
    t += [("pooler.dense.weight", n(d, d)), ("pooler.dense.bias", n(d))]
    return t


def report(name, d, arrays):
    np.savez(os.path.join(d, "reference.npz"), **arrays)
    sizes = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    summary = ", ".join(f"{k} {list(v.shape)} max|·| {np.abs(v).max():.4f}" for k, v in arrays.items() if v.dtype == np.float32)
    print(f"{name}: {sizes} bytes; {summary}")


def main():
    torch.set_grad_enabled(False)
    g = torch.Generator().manual_seed(20261201)
    ids = torch.randint(0, 64, (2, 7), generator=g)

    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 64, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False, "attention_bias": False, "torch_dtype": "float32",
             "rope_scaling": {"rope_type": "llama3", "factor": 4.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}
    W, d = save("llama", llama, llama_tensors(g, llama, 0.3), "F32")
    report("llama", d, {"input_ids": ids.numpy(), "logits": llama_forward(W, llama, ids).float().numpy()})

    qwen = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 40, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 64, "max_position_embeddings": 128,
            "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu", "tie_word_embeddings": True, "use_sliding_window": False,
            "sliding_window": 4096, "torch_dtype": "bfloat16", "attention_bias": True}
    W, d = save("qwen2", qwen, llama_tensors(g, qwen, 0.3), "BF16", shards=2)
    report("qwen2", d, {"input_ids": ids.numpy(), "logits": llama_forward(W, qwen, ids).float().numpy()})

    gpt2 = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 16, "n_inner": None,
            "vocab_size": 64, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new", "torch_dtype": "float16"}
    W, d = save("gpt2", gpt2, gpt2_tensors(g, gpt2, 0.3), "F16")
    report("gpt2", d, {"input_ids": ids.numpy(), "logits": gpt2_forward(W, gpt2, ids).float().numpy()})

    bert = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 64, "hidden_act": "gelu", "max_position_embeddings": 16, "type_vocab_size": 2, "vocab_size": 64,
            "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}
    W, d = save("bert", bert, bert_tensors(g, bert, 0.3), "F32")
    bids = torch.randint(0, 64, (2, 6), generator=g)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    types = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]])
    hidden, pooled = bert_forward(W, bert, bids, mask, types)
    report("bert", d, {"input_ids": bids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": types.numpy(),
                       "last_hidden_state": hidden.float().numpy(), "pooler_output": pooled.float().numpy()})


if __name__ == "__main__":
    main()
