"""The PyTorch peer of examples/FashionCnn: the same CNN, data, optimiser and batch, trained for --epochs epochs.

Model: conv 1→32 3×3 pad 1, ReLU, max-pool 2; conv 32→64 3×3 pad 1, ReLU, max-pool 2; flatten; Linear 3136→128, ReLU,
Linear 128→10. Adam 1e-3, batch 64, float32, cross-entropy, pixels scaled to [0, 1]. Prints the test accuracy and the
time of each epoch and, at the end, one JSON line {"epochs": [...], "parameters": N}. With --save PATH it writes the
trained state_dict as safetensors (PyTorch's names: 0.weight, 0.bias, 3.weight, …) for the interop test.

    /usr/bin/python3 benchmarks/peers/fashion_cnn.py --data /usr/share/datasets/fashion-mnist --epochs 5
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "golden"))
from safetensors_interop import save_file  # noqa: E402
from training import read_idx  # noqa: E402


def cnn(seed):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(3136, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))


def load(directory, prefix):
    images = read_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(directory, f"{prefix}-labels-idx1-ubyte")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(labels.astype(np.int64))


def accuracy(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return correct / len(y)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--steps", type=int, default=0, help="stop each epoch after this many steps (0: the whole epoch)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--save", help="write the trained state_dict here as safetensors")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    x_train, y_train = load(args.data, "train")
    x_test, y_test = load(args.data, "t10k")
    model = cnn(args.seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    epochs = []
    for epoch in range(args.epochs):
        perm = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(args.seed * 1000 + epoch))
        t = time.perf_counter()
        loss_sum, steps = 0.0, 0
        for i in range(0, len(y_train), args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
            loss_sum += loss.item()
            steps += 1
            if args.steps and steps >= args.steps:
                break
        seconds = time.perf_counter() - t
        acc = accuracy(model, x_test, y_test)
        epochs.append({"epoch": epoch + 1, "seconds": seconds, "steps": steps, "mean_loss": loss_sum / steps, "test_accuracy": acc})
        print(f"epoch {epoch + 1}: loss {loss_sum / steps:.4f}  test accuracy {acc:.4f}  {seconds:.1f} s", flush=True)
    if args.save:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.save, metadata={"format": "pt"})
    print(json.dumps({"torch": torch.__version__, "threads": args.threads, "epochs": epochs,
                      "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
