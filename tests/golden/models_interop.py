"""PyTorch-written weights of the two example networks, for the interop test (ModelInteropTests).

Builds the CNN of benchmarks/peers/fashion_cnn.py and the character-level GPT of benchmarks/peers/char_gpt.py with
PyTorch's default initialisation (seeded), runs each on a fixed input, and writes, beside this script:
    safetensors/torch_cnn.safetensors, safetensors/torch_cnn.json   (input [2, 1, 28, 28] float32, logits [2, 10])
    safetensors/torch_gpt.safetensors, safetensors/torch_gpt.json   (tokens [2, 16] int64, logits [2, 16, 70])
The C# test loads each file into the same architecture built from Autograd.Nn modules and compares the logits.

    /usr/bin/python3 tests/golden/models_interop.py
"""

import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks", "peers"))
from char_gpt import Gpt  # noqa: E402
from fashion_cnn import cnn  # noqa: E402
from safetensors_interop import save_file  # noqa: E402


def write(name, model, x):
    model.eval()
    with torch.no_grad():
        logits = model(x)
    out = os.path.join(HERE, "safetensors")
    os.makedirs(out, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, f"torch_{name}.safetensors"),
              metadata={"format": "pt", "source": "tests/golden/models_interop.py"})
    with open(os.path.join(out, f"torch_{name}.json"), "w", encoding="utf-8") as f:
        json.dump({"torch": torch.__version__, "input_shape": list(x.shape), "input": x.flatten().tolist(),
                   "logits_shape": list(logits.shape), "logits": logits.flatten().tolist()}, f)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters, logits {list(logits.shape)}")


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(7)
    write("cnn", cnn(3), torch.rand(2, 1, 28, 28, generator=gen))
    torch.manual_seed(5)
    write("gpt", Gpt(70), torch.randint(0, 70, (2, 16), generator=gen))


if __name__ == "__main__":
    main()
