#!/usr/bin/env python3
"""A tiny random-weight BertModel checkpoint in Hugging Face layout, with reference outputs, for the
importer's tests (no pretrained BERT is reachable here).

    /usr/bin/python3 scripts/make_hf_bert_fixture.py

Writes fixtures/hf/bert/{config.json, model.safetensors, reference.npz} and the "bert" entry of
fixtures/hf/fixtures.json. The module (hf_models.BertModel) follows transformers' BertModel in eval mode;
the checkpoint read back by an independent float64 NumPy forward (hf_numpy_reference.bert_outputs) must
reproduce the recorded outputs.

Weights: seeded random. Linear and embedding weights N(0, 0.2) (larger than BERT's 0.02 initializer range so that
attention, GELU and residual paths all shape the outputs), biases N(0, 0.1), LayerNorm gamma 1 + N(0, 0.1) and
beta N(0, 0.1) (not 1 and 0, so a swapped or ignored LayerNorm parameter shows).
reference.npz: input_ids int64 [2, 12], attention_mask int64 [2, 12] (row 1 padded after 7 tokens),
token_type_ids int64 [2, 12] (two segments in row 0), last_hidden_state float32 [2, 12, 64],
pooler_output float32 [2, 64].
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture_lib as fl  # noqa: E402
import hf_models  # noqa: E402
import hf_numpy_reference  # noqa: E402

SEED = 20251221

CONFIG = {
    "architectures": ["BertModel"], "model_type": "bert",
    "vocab_size": 512, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
    "intermediate_size": 256, "hidden_act": "gelu", "max_position_embeddings": 64, "type_vocab_size": 2,
    "layer_norm_eps": 1e-12, "position_embedding_type": "absolute", "pad_token_id": 0,
    "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "initializer_range": 0.02,
    "torch_dtype": "float32",
}


def main():
    torch.manual_seed(SEED)
    model = hf_models.BertModel(CONFIG).eval()
    gen = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=gen)
            if "LayerNorm.weight" in name:
                p.copy_(1 + 0.1 * noise)
            elif p.dim() == 1:
                p.copy_(0.1 * noise)
            else:
                p.copy_(0.2 * noise)
    ids = torch.randint(1, CONFIG["vocab_size"], (2, 12), generator=gen)
    mask = torch.ones(2, 12, dtype=torch.int64)
    mask[1, 7:] = 0
    ids[1, 7:] = CONFIG["pad_token_id"]
    types = torch.zeros(2, 12, dtype=torch.int64)
    types[0, 6:] = 1
    with torch.no_grad():
        hidden, pooled = model(ids, mask, types)

    folder = os.path.join(fl.FIXTURES, "hf", "bert")
    os.makedirs(folder, exist_ok=True)
    fl.write_json(os.path.join(folder, "config.json"), CONFIG)
    state = {k: v.numpy().astype(np.float32) for k, v in model.state_dict().items()}
    fl.write_safetensors(os.path.join(folder, "model.safetensors"), state, {"format": "pt"})
    np.savez(os.path.join(folder, "reference.npz"), input_ids=ids.numpy(), attention_mask=mask.numpy(),
             token_type_ids=types.numpy(), last_hidden_state=hidden.numpy(), pooler_output=pooled.numpy())

    np_hidden, np_pooled = hf_numpy_reference.bert_outputs(folder, ids.numpy(), mask.numpy(), types.numpy())
    diff = max(float(np.abs(np_hidden - hidden.numpy()).max()), float(np.abs(np_pooled - pooled.numpy()).max()))
    assert diff < 1e-4, f"bert: the checkpoint read back in NumPy differs from PyTorch by {diff}"
    params = sum(p.numel() for p in model.parameters())
    print(f"bert: {params} parameters, {len(state)} tensors, "
          f"{os.path.getsize(os.path.join(folder, 'model.safetensors'))} bytes; NumPy float64 forward from the "
          f"safetensors file vs PyTorch max |diff| {diff:.2e}; pooler_output[0, :4] = {pooled[0, :4].tolist()}")
    fl.update_json(os.path.join(fl.FIXTURES, "hf", "fixtures.json"), {"models": {"bert": {
        "folder": "bert",
        "architecture": "BertModel",
        "weights": "random, seeded (see scripts/make_hf_bert_fixture.py): matrices N(0, 0.2), biases N(0, 0.1), "
                   "LayerNorm gamma 1 + N(0, 0.1), beta N(0, 0.1)",
        "parameters": params,
        "seed": SEED,
        "tensors": {k: list(v.shape) for k, v in state.items()},
        "safetensors_bytes": os.path.getsize(os.path.join(folder, "model.safetensors")),
        "reference": {"inputs": "input_ids, attention_mask (row 1 padded from position 7, pad id 0), "
                                "token_type_ids (row 0: segment 1 from position 6)",
                      "outputs": "last_hidden_state [2, 12, 64], pooler_output [2, 64] from the PyTorch module "
                                 "(padded positions are computed like the others; only keys are masked)",
                      "numpy_float64_max_abs_diff": diff},
        "notes": "Tensor names as BertModel.state_dict() (no 'bert.' prefix; LayerNorm weight/bias, not "
                 "gamma/beta; no position_ids buffer).",
    }}}, generator="scripts/train_text_fixtures.py, scripts/make_hf_bert_fixture.py", torch=torch.__version__)


if __name__ == "__main__":
    main()
