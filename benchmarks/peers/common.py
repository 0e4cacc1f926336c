"""Shared timing and output for the PyTorch peers of the Autograd benchmarks.

Every peer times the same workload as its C# counterpart in benchmarks/Autograd.Benchmarks (same shapes, dtypes,
chain, model and batch), with torch.set_num_threads(--threads), and prints one JSON object:
    {"torch": "1.13.1", "threads": 2, "env": {...}, "results": {key: {"median_ns": ..., ...}}}
Keys are the ones the C# report builds, e.g. "softmax/fwdbwd/fused/f32/1024x1024" or "matmul/matmul/f32/512x512x512/t1".
Timing: a warm-up of at least 3 calls and --warmup seconds, then --repeats samples, each the mean of enough calls to
last --sample seconds; the figure is the median sample (divided by ops for per-operation figures).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch

DTYPES = {"f32": torch.float32, "f64": torch.float64}


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    p.add_argument("--repeats", type=int, default=11, help="samples per workload (median reported)")
    p.add_argument("--sample", type=float, default=0.02, help="seconds per sample")
    p.add_argument("--warmup", type=float, default=0.05, help="seconds of warm-up per workload")
    p.add_argument("--out", help="write the JSON here instead of standard output")
    return p


def setup(args):
    torch.set_num_threads(args.threads)
    set_blas_threads(args.threads)


def _openblas():
    """The OpenBLAS that torch's matmul calls (Debian's torch links libblas.so.3, an OpenBLAS), or None."""
    import ctypes

    for name in ("libblas.so.3", "libopenblas.so.0"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        if hasattr(lib, "openblas_set_num_threads"):
            return lib
    return None


def set_blas_threads(threads):
    """torch.set_num_threads does not reach OpenBLAS's own threads: without this call a matmul at --threads 1 ran on
    every core (on a 2-core AMD EPYC, 180 GFLOP/s at 512x512x512 float32 instead of 105 on one thread)."""
    lib = _openblas()
    if lib is not None:
        lib.openblas_set_num_threads(int(threads))


def blas_threads():
    """The number of threads OpenBLAS uses now, or None when torch does not call an OpenBLAS."""
    lib = _openblas()
    return None if lib is None else int(lib.openblas_get_num_threads())


def measure(fn, args, ops=1):
    """Median time per call of fn (per op when a call performs `ops` operations), in nanoseconds."""
    start = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - start < args.warmup:
        fn()
        calls += 1
    per_call = (time.perf_counter() - start) / calls
    inner = max(1, int(args.sample / max(per_call, 1e-9)))
    samples = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t) / inner)
    return {
        "median_ns": statistics.median(samples) * 1e9 / ops,
        "min_ns": min(samples) * 1e9 / ops,
        "repeats": args.repeats,
        "calls_per_sample": inner,
    }


def emit(args, results, **extra):
    doc = {
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "blas_threads": blas_threads(),
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")},
        "results": results,
    }
    doc.update(extra)
    text = json.dumps(doc, indent=1, sort_keys=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)


def dims(shape):
    return [int(s) for s in shape.split("x")]
