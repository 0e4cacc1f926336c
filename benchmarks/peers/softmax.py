"""Question 1 in PyTorch: softmax fused (torch.softmax) vs composed (amax, sub, exp, sum, div), the fused
log_softmax and logsumexp, over the last dim (logsumexp's upstream gradient has the reduced shape); forward (input
requires grad, so recorded), backward alone (retain_graph) and forward+backward, via torch.autograd.grad with a seeded
upstream gradient, as SoftmaxBenchmarks does."""

import torch

from common import DTYPES, dims, emit, measure, parser, setup

SHAPES = "9,64x10,32x1000,256x1024,1024x1024,1x1000000"


def composed(x):
    m = x.amax(-1, keepdim=True)
    e = (x - m).exp()
    return e / e.sum(-1, keepdim=True)


VARIANTS = {
    "composed": composed,
    "fused": lambda x: torch.softmax(x, -1),
    "logsoftmax": lambda x: torch.log_softmax(x, -1),
    "logsumexp": lambda x: torch.logsumexp(x, -1),
}


def main():
    p = parser(__doc__)
    p.add_argument("--shapes", default=SHAPES)
    p.add_argument("--dtypes", default="f32,f64")
    args = p.parse_args()
    setup(args)
    results = {}
    for shape in args.shapes.split(","):
        for dt in args.dtypes.split(","):
            gen = torch.Generator().manual_seed(20240611)
            x = torch.randn(dims(shape), generator=gen, dtype=DTYPES[dt]).requires_grad_(True)
            g_full = torch.randn(dims(shape), generator=gen, dtype=DTYPES[dt])
            g_reduced = torch.randn(dims(shape)[:-1], generator=gen, dtype=DTYPES[dt])
            for name, f in VARIANTS.items():
                y = f(x)
                g = g_reduced if name == "logsumexp" else g_full
                results[f"softmax/fwd/{name}/{dt}/{shape}"] = measure(lambda: f(x), args)
                results[f"softmax/bwd/{name}/{dt}/{shape}"] = measure(
                    lambda: torch.autograd.grad(y, x, g, retain_graph=True), args)
                results[f"softmax/fwdbwd/{name}/{dt}/{shape}"] = measure(
                    lambda: torch.autograd.grad(f(x), x, g), args)
    emit(args, results)


if __name__ == "__main__":
    main()
