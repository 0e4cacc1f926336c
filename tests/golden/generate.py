#!/usr/bin/python3
"""Golden vectors for Autograd, computed by PyTorch itself.

Run with Debian's PyTorch 1.13 (apt-get install -y python3-torch):

    /usr/bin/python3 tests/golden/generate.py

Writes one JSON file per operator family into tests/golden/. Every case records the operation (the name of the
Autograd method it exercises, plus its arguments), the inputs, the upstream gradient, the expected output, the
expected gradient of every input and, where the operation is twice differentiable, the gradient of
<grad, v> for a fixed v. Non-finite numbers are written as the strings "nan", "inf" and "-inf".
The script is deterministic: every random tensor comes from a generator seeded by the case name.
"""
import json
import math
import os
import zlib

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def enc(v):
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return v


def ser(t):
    t = t.detach()
    if t._is_zerotensor():  # PyTorch's lazily materialised zeros (some second-order rules return them)
        t = torch.zeros(t.shape, dtype=t.dtype)
    t = t.contiguous()
    return {
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "data": [enc(v) for v in t.reshape(-1).tolist()] if t.numel() > 0 else [],
    }


class Family:
    def __init__(self, name):
        self.name = name
        self.cases = []
        self.names = set()

    def gen(self, name):
        return torch.Generator().manual_seed(zlib.crc32(f"{self.name}/{name}".encode()))

    def randn(self, name, shape, dtype, salt=0):
        return torch.randn(shape, generator=self.gen(f"{name}#{salt}"), dtype=torch.float64).to(dtype)

    def add(self, name, op, args, inputs, fn, second=True, grad_output=None):
        """inputs: tensors (float tensors get requires_grad); fn(*inputs) -> output tensor."""
        assert name not in self.names, name
        self.names.add(name)
        xs = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
        y = fn(*xs)
        case = {"name": f"{self.name}/{name}", "op": op, "args": args, "inputs": [ser(x) for x in xs], "output": ser(y)}
        diff = [x for x in xs if x.requires_grad]
        if y.requires_grad:
            g = grad_output if grad_output is not None else self.randn(name, y.shape, y.dtype, salt=1)
            case["gradOutput"] = ser(g)
            grads = torch.autograd.grad(y, diff, g, create_graph=second, allow_unused=True)
            grads = [gr if gr is not None else torch.zeros_like(x) for gr, x in zip(grads, diff)]
            it = iter(grads)
            case["grads"] = [ser(next(it)) if x.requires_grad else None for x in xs]
            if second:
                vs = [self.randn(name, x.shape, x.dtype, salt=10 + i) for i, x in enumerate(diff)]
                terms = [(gr * v).sum() for gr, v in zip(grads, vs) if gr.requires_grad]
                if terms:
                    s = sum(terms)
                    hs = torch.autograd.grad(s, diff, allow_unused=True)
                    hs = [h if h is not None else torch.zeros_like(x) for h, x in zip(hs, diff)]
                else:
                    hs = [torch.zeros_like(x) for x in diff]
                iv, ih = iter(vs), iter(hs)
                case["second"] = {
                    "v": [ser(next(iv)) if x.requires_grad else None for x in xs],
                    "grads": [ser(next(ih)) if x.requires_grad else None for x in xs],
                }
        self.cases.append(case)

    def write(self):
        path = os.path.join(HERE, f"{self.name}.json")
        with open(path, "w") as f:
            json.dump({"generator": "tests/golden/generate.py", "torch": torch.__version__, "cases": self.cases}, f, separators=(",", ":"))
            f.write("\n")
        return len(self.cases)


def positive(fam, name, shape, dtype, lo=0.5, hi=2.0):
    u = torch.rand(shape, generator=fam.gen(name + "#pos"), dtype=torch.float64)
    return (lo + (hi - lo) * u).to(dtype)


def away_from_zero(fam, name, shape, dtype):
    x = fam.randn(name, shape, torch.float64)
    return (x + 0.3 * torch.sign(x)).to(dtype)


def distinct(fam, name, shape, dtype):
    n = 1
    for s in shape:
        n *= s
    perm = torch.randperm(max(n, 1), generator=fam.gen(name + "#perm"))[:n]
    return (perm.to(torch.float64) * 0.37 - n * 0.1).reshape(shape).to(dtype)


# ---------------------------------------------------------------- elementwise
def elementwise():
    fam = Family("elementwise")
    pairs = [
        ("same", [2, 3], [2, 3]),
        ("scalar_tensor", [], [2, 3]),
        ("tensor_scalar", [4], []),
        ("row_matrix", [3], [4, 3]),
        ("col_matrix", [4, 1], [4, 3]),
        ("1xn_mx1", [1, 5], [4, 1]),
        ("batch", [2, 1, 3], [4, 3]),
        ("batch2", [2, 3, 1, 4], [3, 5, 1]),
        ("one_element", [1], [1]),
        ("len9", [9], [9]),
        ("zero_size", [0, 3], [1, 3]),
    ]
    for dt in DTYPES:
        for pname, sa, sb in pairs:
            for op, fn in [("Add", torch.add), ("Sub", torch.sub), ("Mul", torch.mul), ("Div", torch.div)]:
                name = f"{op}/{pname}/{dt}"
                a = fam.randn(name, sa, DTYPES[dt], 2)
                b = positive(fam, name, sb, DTYPES[dt]) if op == "Div" else fam.randn(name, sb, DTYPES[dt], 3)
                fam.add(name, op, {}, [a, b], fn)
        # C# operators, tensor-tensor and scalar on either side
        for op, fn in [("op_Addition", torch.add), ("op_Subtraction", torch.sub), ("op_Multiply", torch.mul), ("op_Division", torch.div)]:
            name = f"{op}/tensor/{dt}"
            fam.add(name, op, {}, [fam.randn(name, [3, 4], DTYPES[dt], 2), positive(fam, name, [4], DTYPES[dt])], fn)
            for side, s in [("right", 2.5), ("left", -1.5)]:
                name = f"{op}/scalar_{side}/{dt}"
                x = positive(fam, name, [2, 5], DTYPES[dt]) if (op == "op_Division" and side == "left") else fam.randn(name, [2, 5], DTYPES[dt], 2)
                f = (lambda x, fn=fn, s=s: fn(x, s)) if side == "right" else (lambda x, fn=fn, s=s: fn(torch.tensor(s, dtype=x.dtype), x))
                fam.add(name, op, {"scalar": s, "side": side}, [x], f)
        name = f"op_UnaryNegation/{dt}"
        fam.add(name, "op_UnaryNegation", {}, [fam.randn(name, [3, 3], DTYPES[dt])], lambda x: -x)

        unary = [
            ("Neg", torch.neg, "any"), ("Exp", torch.exp, "any"), ("Log", torch.log, "pos"), ("Sqrt", torch.sqrt, "pos"),
            ("Abs", torch.abs, "away"), ("Tanh", torch.tanh, "any"), ("Sigmoid", torch.sigmoid, "any"), ("Relu", torch.relu, "away"),
            ("Erf", torch.erf, "any"),
        ]
        for op, fn, dom in unary:
            for shape in ([], [1], [7], [8], [9], [3, 4], [2, 3, 5], [0, 4]):
                name = f"{op}/{shape}/{dt}"
                x = {"any": lambda: fam.randn(name, shape, DTYPES[dt]), "pos": lambda: positive(fam, name, shape, DTYPES[dt]),
                     "away": lambda: away_from_zero(fam, name, shape, DTYPES[dt])}[dom]()
                fam.add(name, op, {}, [x], fn)
        for p in (2.0, 3.0, 0.5, -1.5, 1.0, 0.0, -2.0):
            for shape in ([5], [2, 3]):
                name = f"Pow/{p}/{shape}/{dt}"
                x = positive(fam, name, shape, DTYPES[dt]) if p != int(p) or p < 0 else fam.randn(name, shape, DTYPES[dt])
                fam.add(name, "Pow", {"exponent": p}, [x], lambda x, p=p: torch.pow(x, p))
        # IEEE cases: log of a negative and of zero, 0/0, sqrt of a negative (forward only: gradients are NaN/inf)
        name = f"Log/ieee/{dt}"
        fam.add(name, "Log", {}, [torch.tensor([-1.0, 0.0, 1.0], dtype=DTYPES[dt])], torch.log, second=False)
        name = f"Div/ieee/{dt}"
        fam.add(name, "Div", {}, [torch.tensor([0.0, 1.0, -1.0], dtype=DTYPES[dt]), torch.tensor([0.0, 0.0, 0.0], dtype=DTYPES[dt])], torch.div, second=False)
        name = f"Sqrt/ieee/{dt}"
        fam.add(name, "Sqrt", {}, [torch.tensor([-1.0, 4.0], dtype=DTYPES[dt])], torch.sqrt, second=False)
        name = f"Relu/at_zero/{dt}"
        fam.add(name, "Relu", {}, [torch.tensor([-1.0, 0.0, 2.0], dtype=DTYPES[dt])], torch.relu)
        name = f"Abs/at_zero/{dt}"
        fam.add(name, "Abs", {}, [torch.tensor([-1.0, 0.0, 2.0], dtype=DTYPES[dt])], torch.abs)
    for src, dst in (("float64", "float32"), ("float32", "float64")):
        name = f"To/{src}_to_{dst}"
        fam.add(name, "To", {"dtype": dst}, [fam.randn(name, [3, 4], DTYPES[src])], lambda x, d=dst: x.to(DTYPES[d]))
    return fam


# ---------------------------------------------------------------- reductions
def reductions():
    fam = Family("reductions")
    torch_fn = {"Sum": torch.sum, "Mean": torch.mean, "Max": torch.amax, "Min": torch.amin}
    dim_sets = [None, [0], [1], [2], [-1], [-2], [-3], [0, 2], [-1, 0], [0, 1, 2]]
    for dt in DTYPES:
        for op in ("Sum", "Mean", "Max", "Min"):
            for dims in dim_sets:
                for keep in (False, True):
                    if dims is None and keep:
                        continue
                    name = f"{op}/{dims}/keep={keep}/{dt}"
                    x = distinct(fam, name, [3, 4, 5], DTYPES[dt]) if op in ("Max", "Min") else fam.randn(name, [3, 4, 5], DTYPES[dt])
                    if dims is None:
                        f = (lambda x, op=op: torch_fn[op](x)) if op in ("Sum", "Mean") else (lambda x, op=op: torch_fn[op](x, dim=list(range(x.dim()))))
                    else:
                        f = lambda x, op=op, dims=dims, keep=keep: torch_fn[op](x, dim=dims, keepdim=keep)
                    fam.add(name, op, {"dims": dims, "keepDim": keep}, [x], f)
            # size-1 dims, a single element, a long row
            for shape, dims in (([1, 6], [0]), ([6, 1], [1]), ([1], [0]), ([], None), ([2, 3079], [-1]), ([3079, 2], [0])):
                name = f"{op}/{shape}/{dims}/{dt}"
                x = distinct(fam, name, shape, DTYPES[dt]) if op in ("Max", "Min") else fam.randn(name, shape, DTYPES[dt])
                if dims is None:
                    f = (lambda x, op=op: torch_fn[op](x)) if op in ("Sum", "Mean") else (lambda x, op=op: torch_fn[op](x, dim=list(range(x.dim()))))
                else:
                    f = lambda x, op=op, dims=dims: torch_fn[op](x, dim=dims)
                fam.add(name, op, {"dims": dims, "keepDim": False}, [x], f, second=shape[0] != 3079 if shape else True)
        # ties: exact duplicates in a row, whole-row ties, ties across several dims
        tied = torch.tensor([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [5.0, -1.0, 5.0, 5.0]], dtype=DTYPES[dt])
        for op in ("Max", "Min"):
            f = torch.amax if op == "Max" else torch.amin
            for dims, keep in (([1], False), ([1], True), ([0], False), ([-1], True), (None, False), ([0, 1], True)):
                name = f"{op}/ties/{dims}/keep={keep}/{dt}"
                fam.add(name, op, {"dims": dims, "keepDim": keep}, [tied],
                        (lambda x, f=f: f(x, dim=[0, 1])) if dims is None else (lambda x, f=f, dims=dims, keep=keep: f(x, dim=dims, keepdim=keep)))
        # zero-size: sum over an empty dim is 0, mean of nothing is NaN; max over a non-empty dim of an empty tensor
        name = f"Sum/empty_dim/{dt}"
        fam.add(name, "Sum", {"dims": [0], "keepDim": False}, [torch.zeros(0, 3, dtype=DTYPES[dt])], lambda x: x.sum(dim=[0]))
        name = f"Sum/empty_all/{dt}"
        fam.add(name, "Sum", {"dims": None, "keepDim": False}, [torch.zeros(0, 3, dtype=DTYPES[dt])], lambda x: x.sum())
        name = f"Sum/empty_keep/{dt}"
        fam.add(name, "Sum", {"dims": [1], "keepDim": True}, [torch.zeros(0, 3, dtype=DTYPES[dt])], lambda x: x.sum(dim=[1], keepdim=True))
        name = f"Mean/empty/{dt}"
        fam.add(name, "Mean", {"dims": [0], "keepDim": False}, [torch.zeros(0, 3, dtype=DTYPES[dt])], lambda x: x.mean(dim=[0]), second=False)
        name = f"Max/empty_other_dim/{dt}"
        fam.add(name, "Max", {"dims": [1], "keepDim": False}, [torch.zeros(0, 3, dtype=DTYPES[dt])], lambda x: torch.amax(x, dim=[1]))
        # NaN propagates through max
        name = f"Max/nan/{dt}"
        fam.add(name, "Max", {"dims": [1], "keepDim": False}, [torch.tensor([[1.0, float("nan"), 2.0], [0.0, 1.0, -1.0]], dtype=DTYPES[dt])],
                lambda x: torch.amax(x, dim=[1]), second=False)
        for shape in ([2, 3], [3]):
            for tgt in ([1, 3], [3], []) if shape == [2, 3] else ([1], [], [3]):
                name = f"SumTo/{shape}->{tgt}/{dt}"
                fam.add(name, "SumTo", {"shape": tgt}, [fam.randn(name, shape, DTYPES[dt])], lambda x, tgt=tgt: x.sum_to_size(tgt) if tgt else x.sum())
    return fam


# ---------------------------------------------------------------- movement
def movement():
    fam = Family("movement")
    for dt in DTYPES:
        d = DTYPES[dt]
        specs = [
            ("Reshape", {"shape": [6, 4]}, [2, 3, 4], lambda x: x.reshape(6, 4)),
            ("Reshape", {"shape": [-1, 2]}, [2, 3, 4], lambda x: x.reshape(-1, 2)),
            ("Reshape", {"shape": []}, [1, 1], lambda x: x.reshape([])),
            ("Reshape", {"shape": [0, 5]}, [5, 0], lambda x: x.reshape(0, 5)),
            ("View", {"shape": [4, 6]}, [2, 3, 4], lambda x: x.view(4, 6)),
            ("Flatten", {"startDim": 0, "endDim": -1}, [2, 3, 4], lambda x: x.flatten()),
            ("Flatten", {"startDim": 1, "endDim": 2}, [2, 3, 4, 5], lambda x: x.flatten(1, 2)),
            ("Squeeze", {"dim": None}, [1, 3, 1, 4], lambda x: x.squeeze()),
            ("Squeeze", {"dim": -2}, [1, 3, 1, 4], lambda x: x.squeeze(-2)),
            ("Squeeze", {"dim": 1}, [2, 3], lambda x: x.squeeze(1)),
            ("Unsqueeze", {"dim": 0}, [3, 4], lambda x: x.unsqueeze(0)),
            ("Unsqueeze", {"dim": -1}, [3, 4], lambda x: x.unsqueeze(-1)),
            ("Unsqueeze", {"dim": 0}, [], lambda x: x.unsqueeze(0)),
            ("Transpose", {"dim0": 0, "dim1": 1}, [3, 4], lambda x: x.transpose(0, 1)),
            ("Transpose", {"dim0": -1, "dim1": 0}, [2, 3, 4], lambda x: x.transpose(-1, 0)),
            ("Transpose", {"dim0": 1, "dim1": 1}, [2, 3], lambda x: x.transpose(1, 1)),
            ("Permute", {"dims": [2, 0, 1]}, [2, 3, 4], lambda x: x.permute(2, 0, 1)),
            ("Permute", {"dims": [-1, 0, 1, 2]}, [2, 1, 3, 2], lambda x: x.permute(-1, 0, 1, 2)),
            ("Expand", {"shape": [4, 3]}, [1, 3], lambda x: x.expand(4, 3)),
            ("Expand", {"shape": [2, 4, -1]}, [4, 1], lambda x: x.expand(2, 4, -1)),
            ("Expand", {"shape": [3, 2, 5]}, [2, 1], lambda x: x.expand(3, 2, 5)),
            ("BroadcastTo", {"shape": [2, 3, 4]}, [3, 1], lambda x: torch.broadcast_to(x, (2, 3, 4))),
            ("get_T", {}, [3, 5], lambda x: x.T),
            ("get_T", {}, [4], lambda x: x.t()),
        ]
        for i, (op, args, shape, fn) in enumerate(specs):
            name = f"{op}/{i}/{shape}/{dt}"
            fam.add(name, op, args, [fam.randn(name, shape, d)], fn)
    return fam


# ---------------------------------------------------------------- matmul
def matmul():
    fam = Family("matmul")
    shapes = [([3, 4], [4, 5]), ([1, 1], [1, 1]), ([2, 9], [9, 7]), ([5, 3, 4], [4, 2]), ([4, 3], [2, 3, 5]),
              ([2, 1, 3, 4], [5, 4, 6]), ([4], [4, 3]), ([3, 4], [4]), ([4], [4]), ([2, 3, 4], [4]), ([4], [2, 4, 3]),
              ([0, 3], [3, 2]), ([3, 0], [0, 2]), ([64, 20], [20, 16])]
    for dt in DTYPES:
        for sa, sb in shapes:
            name = f"MatMul/{sa}x{sb}/{dt}"
            fam.add(name, "MatMul", {}, [fam.randn(name, sa, DTYPES[dt], 2), fam.randn(name, sb, DTYPES[dt], 3)], torch.matmul)
    return fam


# ---------------------------------------------------------------- softmax family
def softmax_family():
    fam = Family("softmax")

    def composed_softmax(x, dim):
        m = torch.amax(x, dim=dim, keepdim=True)
        e = torch.exp(x - m)
        return e / e.sum(dim=dim, keepdim=True)

    def composed_log_softmax(x, dim):
        s = x - torch.amax(x, dim=dim, keepdim=True)
        return s - torch.log(torch.exp(s).sum(dim=dim, keepdim=True))

    def composed_lse(x, dim, keep):
        m = torch.amax(x, dim=dim, keepdim=True)
        r = m + torch.log(torch.exp(x - m).sum(dim=dim, keepdim=True))
        return r if keep else r.squeeze(dim)

    fused = {
        "Softmax": lambda x, dim, keep: torch.softmax(x, dim),
        "LogSoftmax": lambda x, dim, keep: torch.log_softmax(x, dim),
        "LogSumExp": lambda x, dim, keep: torch.logsumexp(x, dim, keepdim=keep),
        "SoftmaxComposed": lambda x, dim, keep: composed_softmax(x, dim),
        "LogSoftmaxComposed": lambda x, dim, keep: composed_log_softmax(x, dim),
        "LogSumExpComposed": lambda x, dim, keep: composed_lse(x, dim, keep),
    }
    for dt in DTYPES:
        d = DTYPES[dt]
        for op, fn in fused.items():
            keeps = (False, True) if op.startswith("LogSumExp") else (False,)
            for shape in ([9], [1], [4, 7], [2, 3, 5]):
                for dim in range(-len(shape), len(shape)):
                    for keep in keeps:
                        name = f"{op}/{shape}/dim={dim}/keep={keep}/{dt}"
                        fam.add(name, op, {"dim": dim, "keepDim": keep}, [fam.randn(name, shape, d) * 3], lambda x, fn=fn, dim=dim, keep=keep: fn(x, dim, keep))
            if op.endswith("Composed"):
                continue
            # stability: logits of +-1e4, -inf masks, an all -inf row, a long row, zero-size and rank-0
            big = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4 + 2, -1e4 + 1, -1e4]], dtype=d)
            ninf = float("-inf")
            masked = torch.tensor([[0.5, ninf, 1.5, ninf], [ninf, 2.0, -1.0, 0.0]], dtype=d)
            allinf = torch.tensor([[ninf, ninf, ninf], [1.0, 2.0, 3.0]], dtype=d)
            for label, x, second in (("big", big, True), ("masked", masked, op != "LogSoftmax"), ("all_ninf", allinf, False)):
                for dim in (1, 0) if label != "all_ninf" else (1,):
                    name = f"{op}/{label}/dim={dim}/{dt}"
                    fam.add(name, op, {"dim": dim, "keepDim": False}, [x], lambda x, fn=fn, dim=dim: fn(x, dim, False), second=second)
            name = f"{op}/long_row/{dt}"
            fam.add(name, op, {"dim": -1, "keepDim": False}, [fam.randn(name, [10000], d) * 4], lambda x, fn=fn: fn(x, -1, False), second=False)
            name = f"{op}/zero_size/{dt}"
            fam.add(name, op, {"dim": 1, "keepDim": False}, [torch.zeros(0, 4, dtype=d)], lambda x, fn=fn: fn(x, 1, False))
            name = f"{op}/rank0/{dt}"
            fam.add(name, op, {"dim": 0, "keepDim": False}, [torch.tensor(1.5, dtype=d)], lambda x, fn=fn: fn(x, 0, False))
        # the fused backward operators, as operators of (g, y)
        for op, prim in (("SoftmaxBackward", torch._softmax_backward_data), ("LogSoftmaxBackward", torch._log_softmax_backward_data)):
            for shape, dim in (([9], 0), ([4, 7], 1), ([4, 7], 0), ([2, 3, 5], -2)):
                name = f"{op}/{shape}/dim={dim}/{dt}"
                x = fam.randn(name, shape, d, 5)
                y = torch.softmax(x, dim) if op == "SoftmaxBackward" else torch.log_softmax(x, dim)
                fam.add(name, op, {"dim": dim}, [fam.randn(name, shape, d, 6), y], lambda g, y, prim=prim, dim=dim: prim(g, y, dim, y.dtype))
    return fam


# ---------------------------------------------------------------- composites
def composites():
    fam = Family("composites")
    # The article: x = 1..9, dL = 11..19.
    fam.add("Article", "Softmax", {"dim": 0, "keepDim": False}, [torch.arange(1.0, 10.0, dtype=torch.float64)],
            lambda x: torch.softmax(x, 0), grad_output=torch.arange(11.0, 20.0, dtype=torch.float64))
    fam.add("ArticleComposed", "SoftmaxComposed", {"dim": 0, "keepDim": False}, [torch.arange(1.0, 10.0, dtype=torch.float64)],
            lambda x: torch.exp(x - x.amax(0, True)) / torch.exp(x - x.amax(0, True)).sum(0, True),
            grad_output=torch.arange(11.0, 20.0, dtype=torch.float64))
    # A two-layer MLP with log-softmax and the negative log-likelihood of fixed targets.
    for dt in DTYPES:
        d = DTYPES[dt]
        n, i, h, c = 6, 5, 8, 4
        name = f"MlpNll/{dt}"
        targets = [0, 3, 1, 1, 2, 3]
        inputs = [fam.randn(name, [n, i], d, 1), fam.randn(name, [i, h], d, 2) * 0.5, fam.randn(name, [h], d, 3) * 0.1,
                  fam.randn(name, [h, c], d, 4) * 0.5, fam.randn(name, [c], d, 5) * 0.1]

        def mlp(x, w1, b1, w2, b2):
            hidden = torch.tanh(x @ w1 + b1)
            logp = torch.log_softmax(hidden @ w2 + b2, dim=1)
            return torch.nn.functional.nll_loss(logp, torch.tensor(targets))

        fam.add(name, "MlpNll", {"targets": targets}, inputs, mlp)
    return fam


# ---------------------------------------------------------------- losses (src/Nn/Functional.cs)
def losses():
    fam = Family("losses")
    F = torch.nn.functional
    reductions = {"Mean": "mean", "Sum": "sum", "None": "none"}
    for dt in DTYPES:
        d = DTYPES[dt]
        for red, tred in reductions.items():
            for n, c in ((6, 4), (1, 3), (64, 10)):
                targets = torch.randint(0, c, (n,), generator=fam.gen(f"t{n}{c}{dt}{red}"))
                for smooth in (0.0, 0.1):
                    name = f"CrossEntropy/{n}x{c}/{red}/smooth={smooth}/{dt}"
                    fam.add(name, "CrossEntropy", {"reduction": red, "labelSmoothing": smooth}, [fam.randn(name, [n, c], d) * 2, targets],
                            lambda x, t, tred=tred, smooth=smooth: F.cross_entropy(x, t, reduction=tred, label_smoothing=smooth))
                name = f"NllLoss/{n}x{c}/{red}/{dt}"
                fam.add(name, "NllLoss", {"reduction": red}, [torch.log_softmax(fam.randn(name, [n, c], d), 1), targets],
                        lambda x, t, tred=tred: F.nll_loss(x, t, reduction=tred))
            for shape in ([5], [3, 4]):
                name = f"MseLoss/{shape}/{red}/{dt}"
                fam.add(name, "MseLoss", {"reduction": red}, [fam.randn(name, shape, d, 1), fam.randn(name, shape, d, 2)],
                        lambda p, t, tred=tred: F.mse_loss(p, t, reduction=tred))
                name = f"BinaryCrossEntropyWithLogits/{shape}/{red}/{dt}"
                logits = fam.randn(name, shape, d, 1) * 3
                logits.view(-1)[0] = 40.0  # far into the tail: the stable form must not overflow
                target = torch.rand(shape, generator=fam.gen(name + "#t"), dtype=torch.float64).to(d)
                fam.add(name, "BinaryCrossEntropyWithLogits", {"reduction": red}, [logits, target],
                        lambda x, y, tred=tred: F.binary_cross_entropy_with_logits(x, y, reduction=tred))
        for shape in ([7], [2, 5]):
            name = f"Gelu/{shape}/{dt}"
            fam.add(name, "Gelu", {}, [fam.randn(name, shape, d) * 2], lambda x: F.gelu(x))
    return fam


# ---------------------------------------------------------------- indexing and comparison
def indexing():
    fam = Family("indexing")
    for dt in DTYPES:
        d = DTYPES[dt]
        for shape, dim, ishape in (([3, 4], 1, [3, 6]), ([3, 4], 0, [2, 4]), ([2, 3, 4], -1, [2, 3, 2]), ([5], 0, [7])):
            name = f"Gather/{shape}/{dim}/{dt}"
            size = shape[dim]
            index = torch.randint(0, size, ishape, generator=fam.gen(name + "#i"))
            fam.add(name, "Gather", {"dim": dim}, [fam.randn(name, shape, d), index], lambda x, i, dim=dim: torch.gather(x, dim, i))
            name = f"ScatterAdd/{shape}/{dim}/{dt}"
            sshape = list(ishape)
            sshape[dim] = min(ishape[dim], shape[dim] * 2)
            index = torch.randint(0, size, sshape, generator=fam.gen(name + "#i"))
            fam.add(name, "ScatterAdd", {"dim": dim}, [fam.randn(name, shape, d, 1), index, fam.randn(name, sshape, d, 2)],
                    lambda x, i, src, dim=dim: x.scatter_add(dim, i, src))
        for shape, dim, idx in (([4, 3], 0, [2, 0, 2, 3]), ([4, 3], 1, [1]), ([2, 5, 3], -2, [4, 4, 0])):
            name = f"IndexSelect/{shape}/{dim}/{dt}"
            fam.add(name, "IndexSelect", {"dim": dim}, [fam.randn(name, shape, d), torch.tensor(idx)], lambda x, i, dim=dim: torch.index_select(x, dim, i))
            name = f"IndexAdd/{shape}/{dim}/{dt}"
            sshape = list(shape)
            sshape[dim] = len(idx)
            fam.add(name, "IndexAdd", {"dim": dim}, [fam.randn(name, shape, d, 1), torch.tensor(idx), fam.randn(name, sshape, d, 2)],
                    lambda x, i, src, dim=dim: x.index_add(dim, i, src))
        for shape, dim, start, length in (([5, 4], 0, 1, 3), ([5, 4], -1, 2, 2), ([3, 6, 2], 1, 0, 6)):
            name = f"Narrow/{shape}/{dim}/{start}/{length}/{dt}"
            fam.add(name, "Narrow", {"dim": dim, "start": start, "length": length}, [fam.randn(name, shape, d)],
                    lambda x, dim=dim, start=start, length=length: x.narrow(dim, start, length))
        for shape, dim, start, end, step in (([7, 3], 0, 1, 6, 2), ([4, 9], 1, -5, 9, 3), ([4, 9], -1, 0, 100, 1), ([2, 5, 3], 1, 3, -1, 1)):
            name = f"Slice/{shape}/{dim}/{start}:{end}:{step}/{dt}"
            nd = dim % len(shape)

            def sl(x, nd=nd, start=start, end=end, step=step):
                return x[(slice(None),) * nd + (slice(start, end, step),)]

            fam.add(name, "Slice", {"dim": dim, "start": start, "end": end, "step": step}, [fam.randn(name, shape, d)], sl)
        for shapes, dim in (([[2, 3], [4, 3], [1, 3]], 0), ([[2, 3], [2, 1]], -1), ([[2, 1, 2], [2, 3, 2]], 1)):
            name = f"Concat/{shapes}/{dim}/{dt}"
            fam.add(name, "Concat", {"dim": dim}, [fam.randn(name, s_, d, k) for k, s_ in enumerate(shapes)], lambda *xs, dim=dim: torch.cat(xs, dim))
        for shape, n, dim in (([2, 3], 3, 0), ([2, 3], 2, -1), ([4], 2, 1)):
            name = f"Stack/{shape}x{n}/{dim}/{dt}"
            fam.add(name, "Stack", {"dim": dim}, [fam.randn(name, shape, d, k) for k in range(n)], lambda *xs, dim=dim: torch.stack(xs, dim))
        for cshape, ashape, bshape in (([3, 4], [3, 4], [3, 4]), ([3, 1], [1, 4], [3, 4]), ([4], [3, 4], [])):
            name = f"Where/{cshape}/{ashape}/{bshape}/{dt}"
            cond = torch.randint(0, 2, cshape, generator=fam.gen(name + "#c"))
            fam.add(name, "Where", {}, [cond, fam.randn(name, ashape, d, 1), fam.randn(name, bshape, d, 2)],
                    lambda c, a, b: torch.where(c != 0, a, b))
        name = f"Where/scalar_b/{dt}"
        cond = torch.randint(0, 2, [3, 4], generator=fam.gen(name + "#c"))
        fam.add(name, "Where", {"scalarB": -1.5}, [cond, fam.randn(name, [3, 4], d, 1)], lambda c, a: torch.where(c != 0, a, torch.tensor(-1.5, dtype=a.dtype)))
        for op, fn in (("Maximum", torch.maximum), ("Minimum", torch.minimum)):
            for sa, sb in (([3, 4], [3, 4]), ([3, 1], [4]), ([5], [])):
                name = f"{op}/{sa}/{sb}/{dt}"
                fam.add(name, op, {}, [fam.randn(name, sa, d, 1), fam.randn(name, sb, d, 2)], fn)
            name = f"{op}/ties/{dt}"
            fam.add(name, op, {}, [torch.tensor([1.0, 2.0, 3.0, -1.0], dtype=d), torch.tensor([1.0, 0.0, 3.0, 2.0], dtype=d)], fn)
        for lo, hi in ((-0.5, 0.5), (None, 0.0), (0.2, None)):
            name = f"Clamp/{lo}/{hi}/{dt}"
            x = fam.randn(name, [4, 5], d)
            x.view(-1)[0] = 0.5 if hi == 0.5 else 0.0  # a value on a bound: the gradient passes there
            fam.add(name, "Clamp", {"min": lo, "max": hi}, [x], lambda x, lo=lo, hi=hi: torch.clamp(x, lo, hi))
    return fam


# ---------------------------------------------------------------- convolutions
def convolution():
    fam = Family("convolution")

    def norm(v):
        return v if isinstance(v, int) else list(v)

    # (x shape, weight shape, bias, stride, padding, dilation, groups, second order); a pair is (H, W).
    conv2d = [
        ([2, 3, 5, 5], [4, 3, 3, 3], True, 1, 0, 1, 1, True),
        ([2, 3, 5, 5], [4, 3, 3, 3], False, 1, 0, 1, 1, True),
        ([1, 2, 7, 6], [3, 2, 3, 2], True, 2, 1, 1, 1, True),
        ([2, 2, 6, 7], [3, 2, 3, 3], True, (2, 1), (1, 2), 1, 1, True),
        ([1, 2, 7, 7], [2, 2, 3, 3], True, 1, 0, 2, 1, True),
        ([1, 2, 8, 7], [2, 2, 3, 2], False, 1, (2, 1), (1, 2), 1, True),
        ([2, 4, 5, 5], [6, 2, 3, 3], True, 1, 1, 1, 2, True),
        ([2, 3, 6, 6], [3, 1, 3, 3], True, 1, 1, 1, 3, True),
        ([1, 3, 6, 5], [6, 1, 3, 3], False, 2, 1, 1, 3, True),
        ([2, 5, 4, 3], [3, 5, 1, 1], True, 1, 0, 1, 1, True),
        ([1, 4, 5, 5], [2, 4, 1, 1], False, 2, 0, 1, 1, True),
        ([3, 3, 7, 5], [2, 3, 2, 4], True, (3, 2), (1, 0), 1, 1, True),
        ([1, 2, 3, 3], [4, 2, 3, 3], True, 1, 0, 1, 1, True),
        ([1, 4, 9, 8], [4, 2, 3, 3], True, 2, 2, 2, 2, True),
        ([2, 1, 28, 28], [32, 1, 3, 3], True, 1, 1, 1, 1, False),
        ([2, 32, 14, 14], [64, 32, 3, 3], True, 1, 1, 1, 1, False),
    ]
    conv1d = [
        ([2, 3, 9], [4, 3, 3], True, 1, 0, 1, 1),
        ([2, 3, 9], [4, 3, 3], False, 2, 1, 1, 1),
        ([1, 2, 11], [3, 2, 3], True, 1, 2, 2, 1),
        ([2, 4, 7], [4, 1, 3], True, 1, 1, 1, 4),
        ([1, 4, 8], [6, 2, 2], False, 3, 1, 1, 2),
    ]
    for dt in DTYPES:
        d = DTYPES[dt]
        for sx, sw, has_bias, stride, padding, dilation, groups, second in conv2d:
            name = f"Conv2d/x{sx}/w{sw}/bias={has_bias}/s={stride}/p={padding}/d={dilation}/g={groups}/{dt}"
            inputs = [fam.randn(name, sx, d, 2), fam.randn(name, sw, d, 3)] + ([fam.randn(name, [sw[0]], d, 4)] if has_bias else [])
            args = {"stride": norm(stride), "padding": norm(padding), "dilation": norm(dilation), "groups": groups}
            fam.add(name, "Conv2d", args, inputs,
                    lambda x, w, b=None, s=stride, p=padding, dl=dilation, g=groups: torch.nn.functional.conv2d(x, w, b, s, p, dl, g),
                    second=second)
        for sx, sw, has_bias, stride, padding, dilation, groups in conv1d:
            name = f"Conv1d/x{sx}/w{sw}/bias={has_bias}/s={stride}/p={padding}/d={dilation}/g={groups}/{dt}"
            inputs = [fam.randn(name, sx, d, 2), fam.randn(name, sw, d, 3)] + ([fam.randn(name, [sw[0]], d, 4)] if has_bias else [])
            args = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
            fam.add(name, "Conv1d", args, inputs,
                    lambda x, w, b=None, s=stride, p=padding, dl=dilation, g=groups: torch.nn.functional.conv1d(x, w, b, s, p, dl, g))
    return fam


# ---------------------------------------------------------------- pooling and normalisation
def normalization():
    fam = Family("normalization")
    F = torch.nn.functional
    for dt in DTYPES:
        d = DTYPES[dt]
        # pooling: square and rectangular kernels, strides, padding; CHW and NCHW
        for shape, k, s, p in (([1, 2, 5, 5], [2, 2], [2, 2], [0, 0]), ([2, 1, 6, 7], [3, 3], [2, 2], [1, 1]),
                               ([3, 4, 5], [2, 3], [1, 2], [1, 0]), ([1, 1, 4, 4], [4, 4], [1, 1], [2, 2])):
            name = f"MaxPool2d/{shape}/k={k}/s={s}/p={p}/{dt}"
            fam.add(name, "MaxPool2d", {"kernel": k, "stride": s, "padding": p}, [distinct(fam, name, shape, d)],
                    lambda x, k=k, s=s, p=p: F.max_pool2d(x, k, s, p))
            for cip in (True, False):
                name = f"AvgPool2d/{shape}/k={k}/s={s}/p={p}/cip={cip}/{dt}"
                fam.add(name, "AvgPool2d", {"kernel": k, "stride": s, "padding": p, "countIncludePad": cip}, [fam.randn(name, shape, d)],
                        lambda x, k=k, s=s, p=p, cip=cip: F.avg_pool2d(x, k, s, p, count_include_pad=cip))
        # ties: the first maximum of a window (row-major) takes the gradient
        ties = torch.tensor([[[[1.0, 1.0, 0.0, 2.0], [1.0, 0.5, 2.0, 2.0], [3.0, 0.0, -1.0, -1.0], [0.0, 3.0, -1.0, -1.0]]]], dtype=d)
        for k, s, p in (([2, 2], [2, 2], [0, 0]), ([3, 3], [1, 1], [1, 1]), ([2, 2], [1, 1], [1, 1])):
            name = f"MaxPool2d/ties/k={k}/s={s}/p={p}/{dt}"
            fam.add(name, "MaxPool2d", {"kernel": k, "stride": s, "padding": p}, [ties], lambda x, k=k, s=s, p=p: F.max_pool2d(x, k, s, p))
        for shape, out in (([2, 3, 4, 5], [1, 1]), ([3, 6, 4], [1, 1]), ([1, 2, 6, 4], [3, 2])):
            name = f"AdaptiveAvgPool2d/{shape}/{out}/{dt}"
            fam.add(name, "AdaptiveAvgPool2d", {"outputSize": out}, [fam.randn(name, shape, d)], lambda x, out=out: F.adaptive_avg_pool2d(x, out))
        # layer norm, fused and composed, with and without affine, over one and two dims
        for op in ("LayerNorm", "LayerNormComposed"):
            for shape, ns in (([4, 6], [6]), ([2, 3, 5], [5]), ([2, 3, 4], [3, 4]), ([7], [7])):
                for affine in ("none", "weight", "both"):
                    name = f"{op}/{shape}/{ns}/{affine}/{dt}"
                    x = fam.randn(name, shape, d) * 2 + 0.5
                    ins = [x]
                    if affine != "none":
                        ins.append(fam.randn(name, ns, d, 2) + 1)
                    if affine == "both":
                        ins.append(fam.randn(name, ns, d, 3))
                    fam.add(name, op, {"normalizedShape": ns, "eps": 1e-5, "affine": affine}, ins,
                            lambda x, w=None, b=None, ns=ns: F.layer_norm(x, ns, w, b, 1e-5))
        for shape, ns, eps in (([3, 8], [8], 1e-5), ([2, 3, 4], [3, 4], 0.1)):
            name = f"LayerNormBackward/{shape}/{ns}/eps={eps}/{dt}"

            # The gradient of the layer norm composed from primitives: PyTorch's fused layer_norm treats its saved mean and
            # rstd as constants in its double backward, so its third derivative in x is wrong (off by up to ~6 on these inputs).
            def lnb(g, x, ns=ns, eps=eps):
                x2 = x if x.requires_grad else x.detach().requires_grad_()
                dims = tuple(range(-len(ns), 0))
                c = x2 - x2.mean(dims, keepdim=True)
                y = c / ((c * c).mean(dims, keepdim=True) + eps).sqrt()
                return torch.autograd.grad(y, x2, g, create_graph=True)[0]

            fam.add(name, "LayerNormBackward", {"normalizedShape": ns, "eps": eps}, [fam.randn(name, shape, d, 1), fam.randn(name, shape, d, 2) * 2], lnb)
        # batch norm: training (batch statistics, running statistics updated) and evaluation
        for shape in ([4, 3], [2, 3, 5], [2, 3, 3, 2]):
            c = shape[1]
            for training in (True, False):
                for affine in (False, True):
                    for momentum in ((0.1, 0.3) if training else (0.1,)):
                        name = f"BatchNorm/{shape}/training={training}/affine={affine}/momentum={momentum}/{dt}"
                        x = fam.randn(name, shape, d) * 1.5 + 0.7
                        rm = fam.randn(name, [c], d, 4) * 0.2
                        rv = positive(fam, name, [c], d)
                        rm2, rv2 = rm.clone(), rv.clone()
                        ins = [x] + ([fam.randn(name, [c], d, 2) + 1, fam.randn(name, [c], d, 3)] if affine else [])
                        F.batch_norm(x, rm2, rv2, *(ins[1:] if affine else []), training=training, momentum=momentum, eps=1e-5)
                        args = {"training": training, "momentum": momentum, "eps": 1e-5, "affine": affine,
                                "runningMean": ser(rm), "runningVar": ser(rv), "runningMeanAfter": ser(rm2), "runningVarAfter": ser(rv2)}
                        fam.add(name, "BatchNorm", args, ins,
                                lambda x, w=None, b=None, rm=rm, rv=rv, training=training, momentum=momentum:
                                F.batch_norm(x, rm.clone(), rv.clone(), w, b, training=training, momentum=momentum, eps=1e-5))
        name = f"BatchNorm/no_running/{dt}"
        fam.add(name, "BatchNorm", {"training": True, "momentum": 0.1, "eps": 1e-3, "affine": False, "runningMean": None, "runningVar": None},
                [fam.randn(name, [5, 2, 3], d)], lambda x: F.batch_norm(x, None, None, training=True, eps=1e-3))
    return fam


def attention():
    fam = Family("attention")

    def sdpa(q, k, v, mask=None, causal=False, scale=None):
        # PyTorch 1.13 has no scaled_dot_product_attention: the reference is its composition.
        s = q @ k.transpose(-2, -1) * (scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))
        if mask is not None:
            s = s.masked_fill(mask == 0, float("-inf"))
        if causal:
            lq, lk = s.shape[-2], s.shape[-1]
            s = s.masked_fill(torch.ones(lq, lk, dtype=torch.bool).triu(1), float("-inf"))
        return torch.softmax(s, -1) @ v

    for dt in DTYPES:
        d = DTYPES[dt]
        for ishape, vocab, pad in (([2, 3], 5, None), ([2, 3], 5, 1), ([7], 4, -1), ([], 3, None), ([2, 2, 2], 6, 0)):
            name = f"Embedding/{ishape}/{vocab}/pad={pad}/{dt}"
            n = 1
            for s_ in ishape:
                n *= s_
            idx = torch.randint(0, vocab, ishape, generator=fam.gen(name + "#i"))
            if pad is not None and n > 1:
                idx.view(-1)[0] = pad % vocab  # the padding row is named at least once
                idx.view(-1)[-1] = idx.view(-1)[1]  # and some row twice
            fam.add(name, "Embedding", {"paddingIndex": pad}, [idx, fam.randn(name, [vocab, 4], d)],
                    lambda i, w, pad=pad: torch.nn.functional.embedding(i, w, padding_idx=pad))
        configs = (
            ("plain", [2, 3, 4], [2, 5, 4], [2, 5, 3], None, False, None),
            ("mask", [2, 3, 4], [2, 5, 4], [2, 5, 3], [2, 3, 5], False, None),
            ("causal", [2, 4, 3], [2, 4, 3], [2, 4, 2], None, True, None),
            ("mask+causal", [2, 4, 3], [2, 6, 3], [2, 6, 5], [1, 6], True, 0.7),
            ("heads", [2, 2, 3, 4], [2, 2, 3, 4], [2, 2, 3, 4], [2, 1, 1, 3], False, None),
            ("broadcast batch", [2, 1, 3, 4], [1, 2, 5, 4], [5, 2], None, False, 0.3),
            ("rank 2 causal Lq>Lk", [5, 3], [3, 3], [3, 2], None, True, None),
            ("v batch the largest", [3, 4], [1, 5, 4], [2, 5, 3], [2, 1, 5], True, None),
            ("fully masked row", [2, 3, 4], [2, 4, 4], [2, 4, 3], [2, 3, 4], False, None),
        )
        for label, sq, sk, sv, sm, causal, scale in configs:
            for op in ("ScaledDotProductAttention", "ScaledDotProductAttentionComposed"):
                name = f"{op}/{label}/{dt}"
                base = f"{label}/{dt}"
                inputs = [fam.randn(base, sq, d, 1), fam.randn(base, sk, d, 2), fam.randn(base, sv, d, 3)]
                if sm is not None:
                    mask = torch.randint(0, 4, sm, generator=fam.gen(base + "#m")).clamp(max=1)  # three in four kept
                    if label == "fully masked row":
                        mask[1, 2, :] = 0
                    else:
                        mask[..., 0] = 1  # every query keeps a key
                    inputs.append(mask)
                fam.add(name, op, {"causal": causal, "scale": scale}, inputs,
                        lambda q, k, v, m=None, causal=causal, scale=scale: sdpa(q, k, v, m, causal, scale))
    return fam


def inplace():
    # In-place operators on a non-leaf (x * 1.5), so the gradient reaches x through the rebased history.
    fam = Family("inplace")
    pairs = [("same", [2, 3], [2, 3]), ("row", [4, 3], [3]), ("col", [4, 3], [4, 1]), ("scalar_tensor", [2, 3], []), ("len9", [9], [9])]
    ops = [
        ("AddInPlace", lambda a, b: (a * 1.5).add_(b), 1.0),
        ("AddInPlace", lambda a, b: (a * 1.5).add_(b, alpha=-0.75), -0.75),
        ("SubInPlace", lambda a, b: (a * 1.5).sub_(b), None),
        ("MulInPlace", lambda a, b: (a * 1.5).mul_(b), None),
        ("DivInPlace", lambda a, b: (a * 1.5).div_(b), None),
    ]
    for dt in DTYPES:
        d = DTYPES[dt]
        for pname, sa, sb in pairs:
            for op, fn, alpha in ops:
                name = f"{op}/{pname}/alpha={alpha}/{dt}"
                a = fam.randn(name, sa, d, 2)
                b = positive(fam, name, sb, d) if op == "DivInPlace" else fam.randn(name, sb, d, 3)
                fam.add(name, op, {"alpha": alpha}, [a, b], fn)
        for op, fn in [("AddInPlace", lambda a: (a * 1.5).add_(2.5)), ("SubInPlace", lambda a: (a * 1.5).sub_(2.5)),
                       ("MulInPlace", lambda a: (a * 1.5).mul_(2.5)), ("DivInPlace", lambda a: (a * 1.5).div_(2.5)),
                       ("ZeroInPlace", lambda a: (a * 1.5).zero_().add_(a.exp()))]:
            name = f"{op}/number/{dt}"
            fam.add(name, op, {"scalar": 2.5}, [fam.randn(name, [3, 4], d, 2)], fn)
        # fill_, copy_, addcmul_, addcdiv_ and sqrt_ in the middle of a graph.
        for value in (0.25, -2.0):
            name = f"FillInPlace/value={value}/{dt}"
            fam.add(name, "FillInPlace", {"value": value}, [fam.randn(name, [3, 4], d, 2)],
                    lambda a, value=value: (a * 1.5).fill_(value).add_(a.exp()).tanh())
        for pname, sa, sb in pairs[:4]:
            name = f"CopyFrom/{pname}/{dt}"
            fam.add(name, "CopyFrom", {}, [fam.randn(name, sa, d, 2), fam.randn(name, sb, d, 3)],
                    lambda a, b: (a * 1.5).copy_(b).mul_(a).exp())
        triples = [("same", [2, 3], [2, 3], [2, 3]), ("row_col", [4, 3], [3], [4, 1]), ("scalar", [2, 3], [2, 3], []), ("len9", [9], [9], [9])]
        for op, value in (("AddcmulInPlace", 0.5), ("AddcmulInPlace", -1.0), ("AddcdivInPlace", 0.5), ("AddcdivInPlace", -1.0)):
            for pname, sa, s1, s2 in triples:
                name = f"{op}/{pname}/value={value}/{dt}"
                t2 = positive(fam, name, s2, d) if op == "AddcdivInPlace" else fam.randn(name, s2, d, 4)
                fn = ((lambda a, u, v, value=value: (a * 1.5).addcmul_(u, v, value=value)) if op == "AddcmulInPlace"
                      else (lambda a, u, v, value=value: (a * 1.5).addcdiv_(u, v, value=value)))
                fam.add(name, op, {"value": value}, [fam.randn(name, sa, d, 2), fam.randn(name, s1, d, 3), t2], fn)
        for shape in ([2, 3], [9]):
            name = f"SqrtInPlace/{shape}/{dt}"
            fam.add(name, "SqrtInPlace", {}, [positive(fam, name, shape, d)], lambda a: (a * 1.5).sqrt_() * a)
    return fam


def main():
    total = 0
    for build in (elementwise, reductions, movement, matmul, softmax_family, composites, losses, indexing, convolution, normalization, attention, inplace):
        fam = build()
        n = fam.write()
        print(f"{fam.name}: {n} cases")
        total += n
    print(f"total: {total} cases")
    print(f"optim/steps: {optim_steps()} cases")


# ---------------------------------------------------------------- optimisers, gradient clipping, lr schedules (src/Nn/Optim)
OPTIM_TORCH_NAMES = {"learningRate": "lr", "momentum": "momentum", "dampening": "dampening", "nesterov": "nesterov",
                     "weightDecay": "weight_decay", "epsilon": "eps", "amsgrad": "amsgrad"}


def optim_steps():
    """Writes optim/steps.json: parameters after each of 3 optimiser steps, clip_grad_norm_ results and lr schedules.

    Optimiser args use Autograd's parameter names and list only what differs from the defaults, so the C# defaults
    are checked against PyTorch's too. A null gradient means the parameter has no grad on that step (it is skipped).
    """
    fam = Family("optim")  # only for its seeded generators; this family writes no cases file of its own
    shapes = ([3, 4], [4])
    configs = [
        ("Sgd/plain", "Sgd", {"learningRate": 0.1}, None),
        ("Sgd/momentum", "Sgd", {"learningRate": 0.1, "momentum": 0.9}, None),
        ("Sgd/nesterov", "Sgd", {"learningRate": 0.1, "momentum": 0.9, "nesterov": True}, None),
        ("Sgd/momentum_wd_dampening", "Sgd", {"learningRate": 0.1, "momentum": 0.9, "weightDecay": 0.01, "dampening": 0.1}, None),
        ("Sgd/momentum_skip", "Sgd", {"learningRate": 0.1, "momentum": 0.9}, (0, 1)),
        ("Adam/default", "Adam", {}, None),
        ("Adam/weight_decay", "Adam", {"learningRate": 0.05, "weightDecay": 0.1}, None),
        ("Adam/amsgrad", "Adam", {"learningRate": 0.05, "amsgrad": True}, None),
        ("Adam/betas_eps", "Adam", {"learningRate": 0.1, "beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3}, None),
        ("Adam/skip", "Adam", {"learningRate": 0.05}, (0, 1)),
        ("AdamW/default", "AdamW", {}, None),
        ("AdamW/weight_decay", "AdamW", {"learningRate": 0.05, "weightDecay": 0.01}, None),
        ("AdamW/amsgrad", "AdamW", {"learningRate": 0.05, "weightDecay": 0.1, "amsgrad": True}, None),
    ]
    classes = {"Sgd": torch.optim.SGD, "Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW}
    optimizers = []
    for dt in DTYPES:
        d = DTYPES[dt]
        params = [fam.randn(f"param/{j}", s, d) for j, s in enumerate(shapes)]
        # the third gradient is small, so the second moment decreases and amsgrad's running maximum matters
        grads = [[fam.randn(f"grad/{k}/{j}", s, d) * (0.01 if k == 2 else 1.0) for j, s in enumerate(shapes)] for k in range(3)]
        for name, kind, args, skip in configs:
            kwargs = {OPTIM_TORCH_NAMES[k]: v for k, v in args.items() if k in OPTIM_TORCH_NAMES}
            if "beta1" in args or "beta2" in args:
                kwargs["betas"] = (args.get("beta1", 0.9), args.get("beta2", 0.999))
            ps = [p.clone().requires_grad_() for p in params]
            opt = classes[kind](ps, foreach=False, **kwargs)
            case = {"name": f"{name}/{dt}", "optimizer": kind, "args": args, "params": [ser(p) for p in ps], "grads": [], "steps": []}
            for k in range(3):
                step_grads = [None if skip == (k, j) else g.clone() for j, g in enumerate(grads[k])]
                for p, g in zip(ps, step_grads):
                    p.grad = g
                opt.step()
                case["grads"].append([None if g is None else ser(g) for g in step_grads])
                case["steps"].append([ser(p) for p in ps])
            optimizers.append(case)

    clips = []
    for dt in DTYPES:
        d = DTYPES[dt]
        for norm_type, max_norm in ((2.0, 1.0), (math.inf, 1.0), (1.0, 1.0), (3.0, 1.0), (2.0, 100.0), (math.inf, 100.0)):
            name = f"ClipGradNorm/norm={norm_type}/max={max_norm}/{dt}"
            # three parameters; the middle one has no gradient and is left out of the norm
            grads = [fam.randn(f"{name}/{j}", s, d) * 2 for j, s in enumerate(([3, 4], [2], [4]))]
            ps = [torch.zeros(g.shape, dtype=d, requires_grad=True) for g in grads]
            for j, (p, g) in enumerate(zip(ps, grads)):
                p.grad = None if j == 1 else g.clone()
            total = torch.nn.utils.clip_grad_norm_(ps, max_norm, norm_type)
            clips.append({"name": name, "maxNorm": max_norm, "normType": enc(norm_type), "grads": [None if j == 1 else ser(g) for j, g in enumerate(grads)],
                          "totalNorm": enc(total.item()), "clipped": [None if p.grad is None else ser(p.grad) for p in ps]})

    schedulers = []
    for kind, args, epochs in (("StepLR", {"stepSize": 3, "gamma": 0.5}, 12), ("StepLR", {"stepSize": 1, "gamma": 0.9}, 10),
                               ("CosineAnnealingLR", {"tMax": 10, "etaMin": 0.0}, 25), ("CosineAnnealingLR", {"tMax": 4, "etaMin": 0.01}, 10)):
        base = 0.1
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=base)
        if kind == "StepLR":
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=args["stepSize"], gamma=args["gamma"])
        else:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args["tMax"], eta_min=args["etaMin"])
        lrs, closed = [opt.param_groups[0]["lr"]], [sched._get_closed_form_lr()[0]]
        for _ in range(epochs):
            opt.step()  # (no gradients: nothing changes) so PyTorch does not warn about the call order
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
            closed.append(sched._get_closed_form_lr()[0])
        schedulers.append({"name": f"{kind}/" + ",".join(f"{k}={v}" for k, v in args.items()), "scheduler": kind, "args": args,
                           "baseLr": base, "lrs": lrs, "closedForm": closed})

    os.makedirs(os.path.join(HERE, "optim"), exist_ok=True)
    with open(os.path.join(HERE, "optim", "steps.json"), "w") as f:
        json.dump({"generator": "tests/golden/generate.py", "torch": torch.__version__, "optimizers": optimizers, "clipGradNorm": clips,
                   "schedulers": schedulers}, f, separators=(",", ":"))
        f.write("\n")
    return len(optimizers) + len(clips) + len(schedulers)

if __name__ == "__main__":
    main()
