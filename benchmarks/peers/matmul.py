"""Question 3 in PyTorch: torch.matmul of seeded [N,K] and [K,M] (shape "NxKxM"), float32 and float64, inputs not
requiring grad, at --threads threads (the report runs it with 1 and with all cores)."""

import torch

from common import DTYPES, dims, emit, measure, parser, setup

SHAPES = ("64x64x64,128x128x128,256x256x256,512x512x512,1024x1024x1024,"
          "64x784x256,784x64x256,64x256x128,256x64x128,64x128x256,64x128x10")


def main():
    p = parser(__doc__)
    p.add_argument("--shapes", default=SHAPES)
    p.add_argument("--dtypes", default="f32,f64")
    args = p.parse_args()
    setup(args)
    results = {}
    for shape in args.shapes.split(","):
        n, k, m = dims(shape)
        for dt in args.dtypes.split(","):
            gen = torch.Generator().manual_seed(20240611)
            a = torch.randn(n, k, generator=gen, dtype=DTYPES[dt])
            b = torch.randn(k, m, generator=gen, dtype=DTYPES[dt])
            r = measure(lambda: torch.matmul(a, b), args)
            r["gflops"] = 2.0 * n * k * m / r["median_ns"]
            results[f"matmul/matmul/{dt}/{shape}/t{args.threads}"] = r
    emit(args, results)


if __name__ == "__main__":
    main()
