"""safetensors interop between PyTorch and Autograd, without the `safetensors` package.

The package is not installed on the reference machine, so this script carries its own reader and writer of the
format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of UTF-8 JSON
({name: {"dtype", "shape", "data_offsets": [begin, end]}}, optional "__metadata__", padded with spaces to a multiple
of 8), then the raw little-endian data, with the tensors covering the data section exactly.

Run it by hand (Debian 12, PyTorch 1.13 from Debian):

    /usr/bin/python3 tests/golden/safetensors_interop.py [path/to/autograd_mlp.safetensors]

1. It builds nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)) in float32 with torch.manual_seed(0) and
   writes its state_dict to safetensors/torch_mlp.safetensors (beside this script) and, in safetensors/torch_mlp.json,
   the parameters, a fixed input (6 x 4, generator seeded 1) and the model's output for it. Both files are committed;
   SafeTensorsTests.LoadsPyTorchWrittenMlpAndMatchesItsOutput loads the file into Autograd's equivalent Sequential
   and checks the output to 1e-6. Running the script again gives the same bytes.
2. It reads the file back with its own reader and checks every tensor round-trips bit for bit.
3. The manual check of the other direction: SafeTensorsTests.WritesAFilePyTorchCanLoad saves Autograd's float32
   Sequential(Linear(4, 3), ReLU(), Linear(3, 2)) to <temp>/autograd-safetensors-interop/autograd_mlp.safetensors
   (with metadata {"format": "pt"}) and its input and output to autograd_mlp.json beside it. Run the C# tests, then
   this script: it loads that file (or the path given as argument) with its reader, load_state_dict(strict=True)s it
   into the PyTorch Sequential, and checks PyTorch's forward output equals Autograd's to 1e-6. If the file is absent
   the step is skipped with a message.
"""
import json
import os
import struct
import sys
import tempfile

import torch
from torch import nn

DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
          "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
          "BOOL": torch.bool}
CODES = {v: k for k, v in DTYPES.items()}


def save_file(tensors, path, metadata=None):
    header, chunks, offset = {}, [], 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        data = t.detach().contiguous().cpu().numpy().tobytes()  # little-endian on x86 / arm64
        header[name] = {"dtype": CODES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def load_file(path):
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    assert 0 < n <= len(buf) - 8, f"{path}: header length {n} does not fit the file ({len(buf)} bytes)"
    header = json.loads(buf[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    data, out, pos = buf[8 + n:], {}, 0
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        b, end = e["data_offsets"]
        dtype = DTYPES[e["dtype"]]
        assert b == pos and end <= len(data), f"{path}: tensor {name} at [{b}, {end}) is not contiguous"
        numel = 1
        for d in e["shape"]:
            numel *= d
        assert numel * torch.empty((), dtype=dtype).element_size() == end - b, f"{path}: {name} size mismatch"
        raw = bytearray(data[b:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name], pos = t.reshape(e["shape"]), end
    assert pos == len(data), f"{path}: the tensors cover {pos} of {len(data)} data bytes"
    return out, metadata


def mlp():
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def values(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def main():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "safetensors")
    os.makedirs(here, exist_ok=True)

    # 1. PyTorch writes.
    torch.manual_seed(0)
    model = mlp().float()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float32)
    with torch.no_grad():
        y = model(x)
    state = model.state_dict()
    st_path = os.path.join(here, "torch_mlp.safetensors")
    save_file(state, st_path, metadata={"format": "pt", "source": "tests/golden/safetensors_interop.py"})
    golden = {"torch": torch.__version__, "seed": 0, "inputSeed": 1,
              "parameters": {k: values(v) for k, v in state.items()},
              "input": values(x), "output": values(y)}
    with open(os.path.join(here, "torch_mlp.json"), "w") as f:
        json.dump(golden, f, indent=1)
        f.write("\n")
    print(f"wrote {st_path} ({os.path.getsize(st_path)} bytes): {', '.join(state)}")
    print("output:", [[round(v, 7) for v in row] for row in y.tolist()])

    # 2. Our reader reads our writer's file back exactly.
    back, meta = load_file(st_path)
    assert list(back) == list(state) and meta["format"] == "pt"
    for k in state:
        assert back[k].dtype == state[k].dtype and torch.equal(back[k], state[k]), k
    print("round trip: ok")

    # 3. PyTorch reads Autograd's file.
    default = os.path.join(tempfile.gettempdir(), "autograd-safetensors-interop", "autograd_mlp.safetensors")
    ours = sys.argv[1] if len(sys.argv) > 1 else default
    if not os.path.exists(ours):
        print(f"skipped: {ours} does not exist; run the C# tests (SafeTensorsTests) first")
        return
    tensors, meta = load_file(ours)
    with open(os.path.splitext(ours)[0] + ".json") as f:
        expected = json.load(f)
    theirs = mlp().float()
    theirs.load_state_dict(tensors, strict=True)
    xin = torch.tensor(expected["input"]["data"], dtype=torch.float32).reshape(expected["input"]["shape"])
    with torch.no_grad():
        yt = theirs(xin)
    ya = torch.tensor(expected["output"]["data"], dtype=torch.float32).reshape(expected["output"]["shape"])
    err = (yt - ya).abs().max().item()
    print(f"read {ours}: tensors {', '.join(f'{k} {list(v.shape)} {CODES[v.dtype]}' for k, v in tensors.items())}; "
          f"metadata {meta}")
    print("PyTorch output:", [[round(v, 7) for v in row] for row in yt.tolist()])
    print(f"max |PyTorch - Autograd| = {err:.3g}")
    assert err <= 1e-6, "PyTorch's output on Autograd's weights differs from Autograd's"
    print("interop: ok")


if __name__ == "__main__":
    main()
