"""Float64 NumPy forward passes of GPT2LMHeadModel, LlamaForCausalLM and BertModel computed straight from a
Hugging Face layout folder (config.json + model.safetensors), independently of the PyTorch modules in
hf_models.py. The fixture scripts use them to check that each checkpoint file, read the way an importer
reads it (tensor names, Conv1D [in, out] layout, fused q|k|v, rotate_half RoPE, GQA head mapping),
reproduces the reference outputs recorded next to it.
"""
import json
import math
import os

import numpy as np

import fixture_lib as fl


def load(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    w = {k: v.astype(np.float64) for k, v in fl.read_safetensors(os.path.join(folder, "model.safetensors")).items()}
    return cfg, w


def _layer_norm(x, g, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def _causal(t):
    return np.tril(np.ones((t, t), dtype=bool))


def gpt2_logits(folder, ids):
    cfg, w = load(folder)
    d, nh, eps = cfg["n_embd"], cfg["n_head"], cfg["layer_norm_epsilon"]
    assert cfg["activation_function"] == "gelu_new"
    hd = d // nh
    b, t = ids.shape
    x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][np.arange(t)][None]
    for i in range(cfg["n_layer"]):
        p = f"transformer.h.{i}."
        h = _layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = h @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: weight [in, 3d]
        q, k, v = (qkv[..., j * d:(j + 1) * d].reshape(b, t, nh, hd).transpose(0, 2, 1, 3) for j in range(3))
        s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
        s = np.where(_causal(t), s, np.finfo(np.float32).min)
        a = (_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
        x = x + a @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        h = _layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        u = h @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"]
        u = 0.5 * u * (1 + np.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u ** 3)))
        x = x + u @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    x = _layer_norm(x, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], eps)
    head = w["lm_head.weight"] if "lm_head.weight" in w else w["transformer.wte.weight"]  # tied when absent
    return x @ head.T


def llama_logits(folder, ids):
    cfg, w = load(folder)
    d, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or d // nh
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    b, t = ids.shape
    inv = 1.0 / theta ** (np.arange(0, hd, 2) / hd)
    ang = np.arange(t)[:, None] * inv[None]  # [t, hd/2]
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(z):  # z [b, heads, t, hd]; dimension j pairs with j + hd/2
        z1, z2 = z[..., :hd // 2], z[..., hd // 2:]
        return np.concatenate([z1 * cos - z2 * sin, z2 * cos + z1 * sin], -1)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    x = w["model.embed_tokens.weight"][ids]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(x, w[p + "input_layernorm.weight"])
        q = (h @ w[p + "self_attn.q_proj.weight"].T).reshape(b, t, nh, hd).transpose(0, 2, 1, 3)
        k = (h @ w[p + "self_attn.k_proj.weight"].T).reshape(b, t, nkv, hd).transpose(0, 2, 1, 3)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(b, t, nkv, hd).transpose(0, 2, 1, 3)
        q, k = rope(q), rope(k)
        kv_of = np.arange(nh) // (nh // nkv)
        s = q @ k[:, kv_of].transpose(0, 1, 3, 2) / math.sqrt(hd)
        s = np.where(_causal(t), s, -np.inf)
        a = (_softmax(s) @ v[:, kv_of]).transpose(0, 2, 1, 3).reshape(b, t, nh * hd)
        x = x + a @ w[p + "self_attn.o_proj.weight"].T
        h = rms(x, w[p + "post_attention_layernorm.weight"])
        g = h @ w[p + "mlp.gate_proj.weight"].T
        u = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms(x, w["model.norm.weight"])
    head = w["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def bert_outputs(folder, ids, attention_mask, token_type_ids):
    from math import erf
    cfg, w = load(folder)
    d, nh, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    assert cfg["hidden_act"] == "gelu"
    hd = d // nh
    b, t = ids.shape
    verf = np.vectorize(erf)

    def lin(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def ln(x, name):
        return _layer_norm(x, w[name + ".weight"], w[name + ".bias"], eps)

    x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.token_type_embeddings.weight"][token_type_ids]
         + w["embeddings.position_embeddings.weight"][np.arange(t)][None])
    x = ln(x, "embeddings.LayerNorm")
    keep = attention_mask.astype(bool)[:, None, None, :]
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + "attention.self." + n).reshape(b, t, nh, hd).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        s = np.where(keep, q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd), -np.inf)
        a = (_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
        x = ln(lin(a, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        u = lin(x, p + "intermediate.dense")
        u = 0.5 * u * (1 + verf(u / math.sqrt(2)))
        x = ln(lin(u, p + "output.dense") + x, p + "output.LayerNorm")
    return x, np.tanh(lin(x[:, 0], "pooler.dense"))
