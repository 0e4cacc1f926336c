"""Question 5 in PyTorch: the layers of LayerBenchmarks, forward and backward in float32 at the same shapes.

Keys as the C# report's fallback keys ("LayerBenchmarks/<method>/<case>"): the CNN's convolutions at batch 64
(small: 1→32 on [64, 1, 28, 28]; large: 32→64 on [64, 32, 14, 14]; 3×3, padding 1), layer norm over [1024, 64] and
[4096, 1024] (PyTorch's fused layer_norm and the same composed from primitives), and causal attention at
[64, 4, 16, 16] and [8, 8, 256, 64] (PyTorch 1.13 has no fused attention: both forms are the composed one).
"""

import math

import torch
import torch.nn.functional as F

from common import emit, measure, parser, setup


def grads(y, inputs, g):
    return torch.autograd.grad(y, inputs, g)


def composed_layer_norm(x, w, b, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * w + b


def attention(q, k, v):
    t = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    causal = torch.ones(t, t, dtype=torch.bool).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v


def main():
    p = parser(__doc__)
    args = p.parse_args()
    setup(args)
    gen = torch.Generator().manual_seed(20240611)

    def randn(*shape, std=1.0, grad=True):
        return (torch.randn(*shape, generator=gen) * std).requires_grad_(grad)

    results = {}
    for case, (cin, cout, hw), (rows, d), dims in (
            ("small", (1, 32, 28), (1024, 64), (64, 4, 16, 16)),
            ("large", (32, 64, 14), (4096, 1024), (8, 8, 256, 64))):
        x, w, b = randn(64, cin, hw, hw), randn(cout, cin, 3, 3, std=0.1), randn(cout)
        g = randn(64, cout, hw, hw, grad=False)

        def conv_forward():
            with torch.no_grad():
                return F.conv2d(x, w, b, padding=1)

        results[f"LayerBenchmarks/Conv2d_Forward/{case}"] = measure(conv_forward, args)
        results[f"LayerBenchmarks/Conv2d_ForwardBackward/{case}"] = measure(lambda: grads(F.conv2d(x, w, b, padding=1), (x, w, b), g), args)

        lx, lw, lb = randn(rows, d), randn(d), randn(d)
        lg = randn(rows, d, grad=False)
        results[f"LayerBenchmarks/LayerNorm_Fused/{case}"] = measure(lambda: grads(F.layer_norm(lx, (d,), lw, lb), (lx, lw, lb), lg), args)
        results[f"LayerBenchmarks/LayerNorm_Composed/{case}"] = measure(lambda: grads(composed_layer_norm(lx, lw, lb), (lx, lw, lb), lg), args)

        q, k, v = randn(*dims), randn(*dims), randn(*dims)
        ag = randn(*dims, grad=False)
        results[f"LayerBenchmarks/Attention_Composed/{case}"] = measure(lambda: grads(attention(q, k, v), (q, k, v), ag), args)
    emit(args, results)


if __name__ == "__main__":
    main()
