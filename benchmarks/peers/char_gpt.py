"""The PyTorch peer of examples/CharGpt: the same character-level GPT, data, optimiser and batch.

Data: Debian's wamerican word list (/usr/share/dict/american-english), one word per line, newline as the end token;
90/10 split by word after a seeded shuffle; each part is one stream of characters (every word followed by a newline);
a batch is 64 random windows of 16 characters with the next character of each position as its target.
Model (pre-LayerNorm): token and learned position embeddings (d_model 64, context 16); 2 blocks of
x + attention(LayerNorm(x)) with 4 causal heads (one Linear 64→192 for q, k, v, one Linear 64→64 out) and
x + MLP(LayerNorm(x)) with Linear 64→256, GELU, Linear 256→64; a final LayerNorm; Linear 64→vocabulary.
AdamW 3e-3, weight decay 0.01, float32, cross-entropy. Prints the train and validation loss (mean over 20 batches)
every --every steps and the milliseconds per training step (evaluation not counted), then 20 words sampled with temperature --temperature, and one
JSON line at the end.

    /usr/bin/python3 benchmarks/peers/char_gpt.py --steps 2000
"""

import argparse
import json
import math
import os
import random
import time

import torch
import torch.nn.functional as F


def corpus(path, seed, fraction=0.1):
    words = [w.strip() for w in open(path, encoding="utf-8") if w.strip()]
    rng = random.Random(seed)
    rng.shuffle(words)
    n_val = min(max(round(len(words) * fraction), 1), len(words) - 1)
    vocab = sorted(set("".join(words)) | {"\n"})
    index = {c: i for i, c in enumerate(vocab)}
    encode = lambda ws: torch.tensor([index[c] for c in "".join(w + "\n" for w in ws)], dtype=torch.long)
    return vocab, encode(words[n_val:]), encode(words[:n_val])


class Attention(torch.nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.proj = torch.nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        h = self.heads
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(d // h)
        causal = torch.ones(t, t, dtype=torch.bool).tril()
        att = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v
        return self.proj(att.transpose(1, 2).reshape(b, t, d))


class Block(torch.nn.Module):
    """Pre-LayerNorm block; names as Autograd.Nn.TransformerBlock: ln1, attn (qkv, proj), ln2, mlp (0, 2)."""

    def __init__(self, d, heads):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.ln2 = torch.nn.LayerNorm(d)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(), torch.nn.Linear(4 * d, d))

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Gpt(torch.nn.Module):
    def __init__(self, vocab, d=64, context=16, layers=2, heads=4):
        super().__init__()
        self.tok = torch.nn.Embedding(vocab, d)
        self.pos = torch.nn.Embedding(context, d)
        self.blocks = torch.nn.Sequential(*[Block(d, heads) for _ in range(layers)])
        self.ln = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos(torch.arange(t))
        return self.head(self.ln(self.blocks(x)))


def batch(stream, size, context, gen):
    starts = torch.randint(0, len(stream) - context, (size,), generator=gen)
    x = torch.stack([stream[s:s + context] for s in starts])
    y = torch.stack([stream[s + 1:s + 1 + context] for s in starts])
    return x, y


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--words", default="/usr/share/dict/american-english")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--context", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vocab, train, val = corpus(args.words, args.seed)
    model = Gpt(len(vocab), context=args.context)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(args.seed)

    def evaluate(stream):
        model.eval()
        with torch.no_grad():
            losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
                      for x, y in (batch(stream, args.batch, args.context, gen) for _ in range(20))]
        model.train()
        return sum(losses) / len(losses)

    log = []
    train_seconds = 0.0
    for step in range(1, args.steps + 1):
        t = time.perf_counter()
        x, y = batch(train, args.batch, args.context, gen)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        train_seconds += time.perf_counter() - t
        if step % args.every == 0 or step == args.steps:
            ms = train_seconds * 1000 / step
            entry = {"step": step, "train": evaluate(train), "validation": evaluate(val), "ms_per_step": ms}
            log.append(entry)
            print(f"step {step}: train {entry['train']:.4f}  validation {entry['validation']:.4f}  {ms:.1f} ms/step", flush=True)

    model.eval()
    words = []
    with torch.no_grad():
        for _ in range(20):
            ctx = [vocab.index("\n")]
            word = ""
            while len(word) < 40:
                logits = model(torch.tensor([ctx[-args.context:]]))[0, -1] / args.temperature
                c = torch.multinomial(logits.softmax(-1), 1, generator=gen).item()
                if vocab[c] == "\n":
                    break
                word += vocab[c]
                ctx.append(c)
            words.append(word)
    print(" ".join(words))
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "vocabulary": len(vocab),
                      "parameters": sum(p.numel() for p in model.parameters()), "log": log, "samples": words}))


if __name__ == "__main__":
    main()
