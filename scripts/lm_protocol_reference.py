"""Reference perplexities of stories260K under the three text protocols, for fixtures/lm-protocols/.

Independent of Whittle: the llama2.c checkpoint and tokenizer are read here, the tokenizer is llama2.c's run.c
`encode` (dummy prefix, code points, byte fallback, greedy merges by score), the forward pass is float64 NumPy
(run.c's interleaved RoPE, grouped-query attention, SwiGLU), and the windows follow the protocols' definitions:

  documents     each document (BOS + tokens) cut into non-overlapping windows of W; a window scores all but its
                first token; the last, shorter window too
  stride        Hugging Face's sliding-window perplexity within each document: for begin in range(0, L, S),
                end = min(begin + W, L), only the last end - prev_end tokens are scored
  concatenated  every document (BOS + tokens) joined into one stream, then cut as in documents

The 95 % interval is exp(mu +- 1.96 se) with mu = sum S_d / sum N_d and the cluster-robust
se^2 = D/(D-1) sum (S_d - mu N_d)^2 / (sum N_d)^2 over documents.

  /usr/bin/python3 scripts/lm_protocol_reference.py ../shared/models/stories260K fixtures/lm-protocols
"""
import json
import math
import struct
import sys

import numpy as np

SEPARATOR = "<|endoftext|>"
CASES = [
    {"protocol": "documents", "window": 64},
    {"protocol": "documents", "window": 128},
    {"protocol": "stride", "window": 64, "stride": 24},
    {"protocol": "stride", "window": 48, "stride": 48},
    {"protocol": "concatenated", "window": 64},
]
GOLDEN = "One day, a clever fox found a shiny key under the old oak tree."


def read_checkpoint(path):
    with open(path, "rb") as f:
        dim, hidden, layers, heads, kv_heads, vocab, seq_len = struct.unpack("7i", f.read(28))
        shared = vocab > 0
        vocab = abs(vocab)
        data = np.frombuffer(f.read(), dtype=np.float32).astype(np.float64)
    head = dim // heads
    kv = kv_heads * head
    at = 0

    def take(*shape):
        nonlocal at
        n = int(np.prod(shape))
        out = data[at:at + n].reshape(shape)
        at += n
        return out

    w = {"emb": take(vocab, dim), "att_norm": take(layers, dim), "wq": take(layers, dim, dim), "wk": take(layers, kv, dim),
         "wv": take(layers, kv, dim), "wo": take(layers, dim, dim), "ffn_norm": take(layers, dim), "w1": take(layers, hidden, dim),
         "w2": take(layers, dim, hidden), "w3": take(layers, hidden, dim), "final_norm": take(dim)}
    take(seq_len, head // 2)
    take(seq_len, head // 2)
    w["cls"] = w["emb"] if shared else take(vocab, dim)
    cfg = dict(dim=dim, hidden=hidden, layers=layers, heads=heads, kv_heads=kv_heads, vocab=vocab, head=head)
    return cfg, w


def read_tokenizer(path, vocab_size):
    pieces, scores = [], []
    with open(path, "rb") as f:
        f.read(4)
        for _ in range(vocab_size):
            score, n = struct.unpack("fi", f.read(8))
            scores.append(score)
            pieces.append(f.read(n))
    return pieces, scores


def encode(text, pieces, scores):
    """run.c's encode without BOS/EOS."""
    ids = {p: i for i, p in reversed(list(enumerate(pieces)))}
    tokens = []
    if text:
        tokens.append(ids[b" "])
    for ch in text:
        b = ch.encode("utf-8")
        if b in ids:
            tokens.append(ids[b])
        else:
            tokens.extend(x + 3 for x in b)
    while True:
        best, best_id, best_at = -1e10, -1, -1
        for i in range(len(tokens) - 1):
            j = ids.get(pieces[tokens[i]] + pieces[tokens[i + 1]], -1)
            if j != -1 and scores[j] > best:
                best, best_id, best_at = scores[j], j, i
        if best_at == -1:
            return tokens
        tokens[best_at:best_at + 2] = [best_id]


def rmsnorm(x, g):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-5) * g


def rope(x, heads, head):
    t = x.shape[0]
    x = x.reshape(t, heads, head // 2, 2)
    freq = 1.0 / 10000.0 ** (np.arange(0, head, 2) / head)
    angle = np.arange(t)[:, None] * freq[None, :]
    c, s = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    a, b = x[..., 0], x[..., 1]
    return np.stack([a * c - b * s, a * s + b * c], -1).reshape(t, heads * head)


def logits(cfg, w, tokens):
    t, hd, h, kvh = len(tokens), cfg["head"], cfg["heads"], cfg["kv_heads"]
    x = w["emb"][tokens]
    causal = np.tril(np.ones((t, t), dtype=bool))
    for l in range(cfg["layers"]):
        xb = rmsnorm(x, w["att_norm"][l])
        q = rope(xb @ w["wq"][l].T, h, hd).reshape(t, h, hd)
        k = rope(xb @ w["wk"][l].T, kvh, hd).reshape(t, kvh, hd)
        v = (xb @ w["wv"][l].T).reshape(t, kvh, hd)
        out = np.empty((t, h, hd))
        for i in range(h):
            g = i // (h // kvh)
            s = q[:, i] @ k[:, g].T / math.sqrt(hd)
            s = np.where(causal, s, -np.inf)
            s = np.exp(s - s.max(-1, keepdims=True))
            out[:, i] = (s / s.sum(-1, keepdims=True)) @ v[:, g]
        x = x + out.reshape(t, h * hd) @ w["wo"][l].T
        xb = rmsnorm(x, w["ffn_norm"][l])
        a = xb @ w["w1"][l].T
        x = x + ((a / (1 + np.exp(-a))) * (xb @ w["w3"][l].T)) @ w["w2"][l].T
    return rmsnorm(x, w["final_norm"]) @ w["cls"].T


def nll(cfg, w, window, first_scored):
    """Per scored token of the window (positions first_scored..len-1), -log p(token | the window before it)."""
    y = logits(cfg, w, window)
    y = y - y.max(-1, keepdims=True)
    logp = y - np.log(np.exp(y).sum(-1, keepdims=True))
    return [-logp[p - 1, window[p]] for p in range(first_scored, len(window))]


def windows(protocol, docs, w, stride):
    """(tokens, first scored position, document of each token) per window."""
    if protocol == "concatenated":
        stream = [t for d in docs for t in d]
        owner = [i for i, d in enumerate(docs) for _ in d]
        return [(stream[k:k + w], 1, owner[k:k + w]) for k in range(0, len(stream), w) if len(stream[k:k + w]) >= 2]
    out = []
    for i, d in enumerate(docs):
        if protocol == "documents":
            out += [(d[k:k + w], 1, [i] * len(d[k:k + w])) for k in range(0, len(d), w) if len(d[k:k + w]) >= 2]
            continue
        prev_end = 0
        for begin in range(0, len(d), stride):
            end = min(begin + w, len(d))
            trg = end - prev_end
            first = max(1, (end - begin) - trg)
            if first < end - begin:
                out.append((d[begin:end], first, [i] * (end - begin)))
            prev_end = end
            if end == len(d):
                break
    return out


def interval(sums, counts):
    d = len(sums)
    mu = sum(sums) / sum(counts)
    se = math.sqrt(d / (d - 1) * sum((s - mu * n) ** 2 for s, n in zip(sums, counts))) / sum(counts)
    return [math.exp(mu - 1.959963984540054 * se), math.exp(mu + 1.959963984540054 * se)]


def main(model_dir, out_dir):
    cfg, w = read_checkpoint(f"{model_dir}/stories260K.bin")
    pieces, scores = read_tokenizer(f"{model_dir}/tok512.bin", cfg["vocab"])
    golden = [1] + encode(GOLDEN, pieces, scores)
    g = nll(cfg, w, golden, 1)
    assert len(golden) == 35 and abs(math.exp(sum(g) / len(g)) - 4.953633) < 1e-5, (len(golden), math.exp(sum(g) / len(g)))

    with open(f"{out_dir}/stories.txt", encoding="utf-8") as f:
        docs = [d.strip() for d in f.read().split(SEPARATOR) if d.strip()]
    tokenized = [[1] + encode(d, pieces, scores) for d in docs]
    cases = []
    for case in CASES:
        sums, counts = [0.0] * len(docs), [0] * len(docs)
        cut = windows(case["protocol"], tokenized, case["window"], case.get("stride"))
        for tokens, first, owner in cut:
            for p, v in zip(range(first, len(tokens)), nll(cfg, w, tokens, first)):
                sums[owner[p]] += v
                counts[owner[p]] += 1
        total, n = sum(sums), sum(counts)
        cases.append(dict(case, windows=len(cut), scoredTokens=n, nllSum=total, perplexity=math.exp(total / n),
                          interval95=interval(sums, counts), documentTokens=[len(d) for d in tokenized]))
        print(f"{case}: {len(cut)} windows, {n} tokens, perplexity {math.exp(total / n):.6f}")
    with open(f"{out_dir}/protocols.json", "w") as f:
        json.dump({"model": "stories260K", "text": "stories.txt", "separator": SEPARATOR, "documents": len(docs),
                   "golden": {"tokens": len(golden), "perplexity": math.exp(sum(g) / len(g))}, "cases": cases}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
