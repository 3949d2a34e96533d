#!/usr/bin/env python3
"""Calibration and held-out sentence batches for the snowflake-arctic-embed-xs acceptance run (issue 17).

Real sentences from Moby Dick (data/moby-dick.txt, fetched by scripts/fetch_data.sh), tokenized with the model's own
WordPiece vocabulary (BERT's basic tokenizer: lower case, accents stripped, punctuation split; greedy longest-match
word pieces), [CLS] … [SEP], at most 64 tokens, padded with attention mask 0. Two disjoint sets of sentences:
calibration (the first N) and held-out (the next M).

    scripts/make_embedding_data.py VOCAB OUT_DIR [--calib 256] [--heldout 256]
"""
import argparse
import re
import unicodedata
from pathlib import Path

import numpy as np


def basic_tokens(text):
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out = []
    for word in text.split():
        current = ""
        for c in word:
            cat = unicodedata.category(c)
            if cat.startswith("P") or (33 <= ord(c) <= 47) or (58 <= ord(c) <= 64) or (91 <= ord(c) <= 96) or (123 <= ord(c) <= 126):
                if current:
                    out.append(current)
                out.append(c)
                current = ""
            else:
                current += c
        if current:
            out.append(current)
    return out


def wordpiece(token, vocab):
    if len(token) > 100:
        return ["[UNK]"]
    pieces, start = [], 0
    while start < len(token):
        end, piece = len(token), None
        while start < end:
            candidate = token[start:end] if start == 0 else "##" + token[start:end]
            if candidate in vocab:
                piece = candidate
                break
            end -= 1
        if piece is None:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def encode(sentence, vocab, max_tokens):
    ids = [vocab["[CLS]"]]
    for t in basic_tokens(sentence):
        ids += [vocab[p] for p in wordpiece(t, vocab)]
    return ids[: max_tokens - 1] + [vocab["[SEP]"]]


def batch(sentences, vocab, max_tokens):
    encoded = [encode(s, vocab, max_tokens) for s in sentences]
    t = max(len(e) for e in encoded)
    ids = np.zeros((len(encoded), t), dtype=np.int64)
    mask = np.zeros((len(encoded), t), dtype=np.int64)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = e
        mask[i, : len(e)] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("vocab")
    parser.add_argument("out")
    parser.add_argument("--calib", type=int, default=256)
    parser.add_argument("--heldout", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()
    vocab = {line.rstrip("\n"): i for i, line in enumerate(open(args.vocab, encoding="utf-8"))}
    root = Path(__file__).resolve().parent.parent
    text = (root / "data" / "moby-dick.txt").read_text(encoding="utf-8")
    sentences = [re.sub(r"\s+", " ", s).strip() for s in re.split(r"(?<=[.!?])\s+", text)]
    sentences = [s for s in sentences if 6 <= len(s.split()) <= 40 and not s.startswith("CHAPTER")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "calib.npz", **batch(sentences[: args.calib], vocab, args.max_tokens))
    np.savez(out / "heldout.npz", **batch(sentences[args.calib : args.calib + args.heldout], vocab, args.max_tokens))
    print(f"{len(sentences)} sentences; calib {args.calib}, held-out {args.heldout}, at most {args.max_tokens} tokens -> {out}")


if __name__ == "__main__":
    main()
