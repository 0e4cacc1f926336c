"""Question 2 in PyTorch: a chain of small operations on one-element float64 tensors (y*a, y+b, tanh, y-c, repeated),
with grad off, recorded, and recorded plus backward; figures are per recorded operation, as TapeOverheadBenchmarks."""

import torch

from common import emit, measure, parser, setup


def chain(x, a, b, c, ops):
    y = x
    for _ in range(ops // 4):
        y = y * a
        y = y + b
        y = torch.tanh(y)
        y = y - c
    return y


def main():
    p = parser(__doc__)
    p.add_argument("--ops", type=int, default=1000)
    args = p.parse_args()
    setup(args)
    leaf = lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True)
    x, a, b, c = leaf(0.5), leaf(0.9), leaf(0.1), leaf(0.05)
    n = args.ops

    def nograd():
        with torch.no_grad():
            return chain(x, a, b, c, n)

    def fwdbwd():
        y = chain(x, a, b, c, n)
        y.backward()
        return y

    results = {
        "tape/nograd": measure(nograd, args, ops=n),
        "tape/recorded": measure(lambda: chain(x, a, b, c, n), args, ops=n),
        "tape/fwdbwd": measure(fwdbwd, args, ops=n),
    }
    emit(args, results)


if __name__ == "__main__":
    main()
