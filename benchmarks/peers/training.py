"""Question 4 in PyTorch: the Fashion-MNIST MLP (784-256-128-10, ReLU, float32, batch 64, Adam 1e-3, cross-entropy).
Times forward+loss, zero_grad+forward+backward, and the whole step on a synthetic batch, as TrainingStepBenchmarks;
with --data DIR (the IDX files, optionally .gz) it also times one epoch over the 60 000 training images, shuffled,
batch 64, reading each loss, after 20 warm-up steps on a throwaway model (as the C# report's epoch timer)."""

import gzip
import os
import struct
import time

import numpy as np
import torch
import torch.nn.functional as F

from common import emit, measure, parser, setup


def mlp(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def step(model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def read_idx(directory, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            opener = gzip.open if path.endswith(".gz") else open
            with opener(path, "rb") as f:
                data = f.read()
            magic, = struct.unpack(">i", data[:4])
            rank = magic & 0xFF
            shape = struct.unpack(">" + "i" * rank, data[4:4 + 4 * rank])
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)
    raise FileNotFoundError(os.path.join(directory, name))


def time_epoch(directory, warmup_steps=20, batch=64):
    images = read_idx(directory, "train-images-idx3-ubyte")
    labels = read_idx(directory, "train-labels-idx1-ubyte")
    x_all = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    y_all = torch.from_numpy(labels.astype(np.int64))
    n = len(y_all)

    def batches(seed):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        for i in range(0, n, batch):
            idx = perm[i:i + batch]
            yield x_all[idx], y_all[idx]

    warm = mlp(1)
    warm_opt = torch.optim.Adam(warm.parameters(), lr=1e-3)
    for i, (xb, yb) in enumerate(batches(0)):
        if i >= warmup_steps:
            break
        step(warm, warm_opt, xb, yb).item()

    model = mlp(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    loss_sum, count = 0.0, 0
    t = time.perf_counter()
    for xb, yb in batches(1):
        loss_sum += step(model, opt, xb, yb).item()
        count += 1
    seconds = time.perf_counter() - t
    return {"seconds": seconds, "batches": count, "samples": n, "mean_loss": loss_sum / count}


def main():
    p = parser(__doc__)
    p.add_argument("--data", help="Fashion-MNIST directory: also time one epoch on the real data")
    args = p.parse_args()
    setup(args)
    model = mlp(1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(20240611)
    x = torch.rand(64, 784, generator=gen)
    y = torch.randint(0, 10, (64,), generator=gen)

    def fwdbwd():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    results = {
        "training/forward": measure(lambda: F.cross_entropy(model(x), y), args),
        "training/fwdbwd": measure(fwdbwd, args),
        "training/step": measure(lambda: step(model, opt, x, y), args),
    }
    extra = {}
    if args.data:
        extra["epoch"] = time_epoch(args.data)
    emit(args, results, **extra)


if __name__ == "__main__":
    main()
