#!/usr/bin/env python3
"""Milliseconds per forward+backward of the multi-head self-attention classifier.

256 sentences of 32 tokens, a vocabulary of 5000 words, d = 64, d_head = 16, 4 heads,
10 classes, every parameter trained, cross-entropy: ``numeric.value_and_gradient`` (the
engine printed from the model's description) against PyTorch autograd on the same model
(when PyTorch is importable, after checking once in float64 that loss and gradients agree
to 1e-10 relative), and the same on 512 sentences (the time must grow linearly).

    python3 benchmarks/bench_attention.py [--threads N] [--dtype float32] [--repeats R]

PyTorch is no dependency of attnflow; to include it, run the script with an interpreter
that has both (a venv with ``pip install -e .`` and ``pip install torch``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for OpenBLAS, OpenMP and PyTorch (default: all cores)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="threads of NumPy's BLAS (default: --threads); 1 leaves the "
                             "threads to attnflow's shares of the batch (the engine's "
                             "recommended setting for several threads)")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if present")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0 or (
            args.blas_threads is not None and args.blas_threads < 1):
        parser.error("--threads and --repeats must be positive, --warmup non-negative")
    return args


ARGS = parse_args()
# Thread pools read these when they load, so they are set before NumPy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)
# NumPy's BLAS reads OPENBLAS_NUM_THREADS first; PyTorch's threads are set on its own below
os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.blas_threads or ARGS.threads)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import numeric  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError:
    torch = None

SENTENCES, TOKENS, WORDS, WIDTH, HEAD_WIDTH, HEADS, CLASSES = 256, 32, 5000, 64, 16, 4, 10


def dataset(n_sentences: int, seed: int, ragged: bool = False) -> numeric.Dataset:
    """Random word ids and labels (``ragged``: every other sentence loses its last tokens)."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, WORDS, (n_sentences, TOKENS))
    if ragged:
        lengths = rng.integers(TOKENS // 2, TOKENS + 1, n_sentences)
        tokens[np.arange(TOKENS)[None, :] >= lengths[:, None]] = numeric.PAD
    return numeric.Dataset(tokens, rng.integers(0, CLASSES, n_sentences), WORDS, CLASSES)


def spec(dtype: str) -> numeric.ModelSpec:
    return numeric.ModelSpec(architecture="multi-head", d=WIDTH, d_head=HEAD_WIDTH,
                             heads=HEADS, dtype=dtype)


def torch_step(params: dict, data: numeric.Dataset, s: numeric.ModelSpec):
    """Loss and gradients of the same model by PyTorch autograd: ``y_i = Σ_h softmax_j(
    (Q_h x_i)·(K_h x_j)/τ) O_hᵀ V_h x_j``, mean over real tokens, ``z = U ȳ``."""
    p = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    tokens = torch.tensor(data.safe_tokens)
    mask = torch.tensor(data.mask)
    x = p["embeddings"][tokens] * mask[..., None]                       # (S, L, d)
    q = torch.einsum("bid,hxd->bhix", x, p["head_query"])
    k = torch.einsum("bid,hxd->bhix", x, p["head_key"])
    v = torch.einsum("bid,hxd->bhix", x, p["head_value"])
    scores = q @ k.transpose(-1, -2) / s.temperature
    scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    a = torch.softmax(scores, dim=-1) * mask[:, None, :, None]
    y = torch.einsum("bhix,hxd->bid", a @ v, p["head_output"])
    pooled = y.sum(1) / mask.sum(1, keepdim=True)
    loss = F.cross_entropy(pooled @ p["classifier"].T, torch.tensor(data.labels))
    loss.backward()
    return float(loss.detach()), {k: t.grad.numpy() for k, t in p.items()}


def check_torch_agrees(data: numeric.Dataset) -> float:
    """Largest relative difference of loss and gradients, float64 (raises beyond 1e-10)."""
    s = spec("float64")
    params = numeric.init_params(s, data, seed=ARGS.seed)
    value, grads = numeric.value_and_gradient(params, data, s)
    t_value, t_grads = torch_step(params, data, s)
    worst = abs(value - t_value) / abs(t_value)
    for name, g in grads.items():
        worst = max(worst, np.abs(g - t_grads[name]).max() / np.abs(t_grads[name]).max())
    if not worst <= 1e-10:
        raise SystemExit(f"PyTorch and numeric disagree: relative difference {worst:.2e}")
    return worst


def best_of(fn, repeats: int, warmup: int) -> tuple[float, float, float]:
    """Minimum and median wall time and minimum process CPU time (all threads) of ``fn()``,
    in milliseconds."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1e3 * min(wall), 1e3 * float(np.median(wall)), 1e3 * min(cpu)


def main() -> int:
    use_torch = torch is not None and not ARGS.no_torch
    if use_torch:
        torch.set_num_threads(ARGS.threads)
        print(f"PyTorch {torch.__version__}: float64 loss and gradients agree to "
              f"{check_torch_agrees(dataset(32, ARGS.seed + 1, ragged=True)):.1e} relative "
              f"(ragged sentences)")
    s = spec(ARGS.dtype)
    print(f"multi-head, {SENTENCES} sentences x {TOKENS} tokens, W={WORDS}, d={WIDTH}, "
          f"d_head={HEAD_WIDTH}, H={HEADS}, C={CLASSES}, every parameter trained; "
          f"{ARGS.dtype}, {ARGS.threads} thread(s) (NumPy's BLAS: "
          f"{os.environ['OPENBLAS_NUM_THREADS']}); ms per forward+backward, wall min / "
          f"median and CPU min of {ARGS.repeats}")
    rows = {}
    for n in (SENTENCES, 2 * SENTENCES):
        data = dataset(n, ARGS.seed)
        params = numeric.init_params(s, data, seed=ARGS.seed)
        rows[n] = {"attnflow": best_of(lambda p=params, x=data: numeric.value_and_gradient(
            p, x, s), ARGS.repeats, ARGS.warmup)}
        if use_torch:
            rows[n]["pytorch"] = best_of(lambda p=params, x=data: torch_step(p, x, s),
                                         ARGS.repeats, ARGS.warmup)
    for n, row in rows.items():
        cells = "   ".join(f"{who} {lo:7.1f} / {mid:7.1f} / {cpu:7.1f}"
                           for who, (lo, mid, cpu) in row.items())
        ratio = (f"   speed vs PyTorch {row['pytorch'][0] / row['attnflow'][0]:.2f}x"
                 if "pytorch" in row else "")
        print(f"{n:5d} sentences: {cells}{ratio}")
    growth = rows[2 * SENTENCES]["attnflow"][0] / rows[SENTENCES]["attnflow"][0]
    print(f"attnflow, twice the sentences: {growth:.2f}x the time (linear: 2)")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}; above about 0.5, other "
          f"processes shared the {os.cpu_count()} cores and the figures are inflated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
