#!/usr/bin/env python3
"""Milliseconds per call of ``numeric.value_and_gradient`` on the paper's synthetic data.

The training set of the paper's experiments: 3999 sentences of 21 tokens (one topic word and
20 non-topic words), 5008 words (8 topic words, 2 per class, and 5000 non-topic words),
4 classes, d = d_key = 10. Timed: Attn-FC (keys and embeddings trained, linear classifier
fixed), Attn-TC (keys, embeddings and linear classifier trained) and Attn-TL (the two-layer
ReLU classifier, hidden width 10, trained), on that set and on 10x more sentences (the cost
must grow linearly). When PyTorch is importable, the same figures for one forward+backward
of the equivalent PyTorch model, after checking once that its loss and gradients agree with
numeric's in float64, and the speed ratio.

    python3 benchmarks/bench_gradient.py [--threads N] [--repeats R] [--dtype float32]

PyTorch is no dependency of attnflow; to include it, run the script with an interpreter
that has both, e.g. a venv with ``pip install -e .`` and ``pip install torch``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for OpenBLAS, OpenMP and PyTorch (default: all cores)")
    parser.add_argument("--repeats", type=int, default=30,
                        help="timed calls per figure on the paper's set (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if present")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        parser.error("--threads and --repeats must be positive, --warmup non-negative")
    return args


ARGS = parse_args()
# Thread pools read these when they load, so they are set before NumPy is imported.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)
# Run from a checkout without installing: the project root holds `numeric`.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

import numeric  # noqa: E402
from numeric.model import check_params  # noqa: E402

try:
    import torch  # noqa: E402
    import torch.nn.functional as F  # noqa: E402
except ImportError:
    torch = None

N_CLASSES, TOPIC_PER_CLASS, N_NONTOPIC, M_NONTOPIC, N_TRAIN = 4, 2, 5000, 20, 3999
N_TOPIC = N_CLASSES * TOPIC_PER_CLASS
N_WORDS = N_TOPIC + N_NONTOPIC

CONFIGS = {
    "Attn-FC": numeric.ModelSpec(classifier="linear", trainable=("keys", "embeddings")),
    "Attn-TC": numeric.ModelSpec(classifier="linear",
                                 trainable=("keys", "embeddings", "classifier")),
    "Attn-TL (mlp)": numeric.ModelSpec(classifier="mlp", hidden=10,
                                       trainable=("keys", "embeddings", "classifier")),
}


def synthetic(n_sentences: int, seed: int) -> numeric.Dataset:
    """Sentences of one topic word (word ``2c + j`` decides class ``c``) and 20 non-topic words."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n_sentences)
    topic = TOPIC_PER_CLASS * labels + rng.integers(0, TOPIC_PER_CLASS, n_sentences)
    nontopic = N_TOPIC + rng.integers(0, N_NONTOPIC, (n_sentences, M_NONTOPIC))
    tokens = rng.permuted(np.concatenate([topic[:, None], nontopic], axis=1), axis=1)
    topic_class = np.full(N_WORDS, -1)
    topic_class[:N_TOPIC] = np.arange(N_TOPIC) // TOPIC_PER_CLASS
    return numeric.Dataset(tokens, labels, N_WORDS, N_CLASSES, topic_class)


def with_spec_dtype(spec: numeric.ModelSpec, dtype: str) -> numeric.ModelSpec:
    return numeric.ModelSpec(d=spec.d, d_key=spec.d_key, classifier=spec.classifier,
                             hidden=spec.hidden, trainable=spec.trainable, dtype=dtype)


# --- the equivalent PyTorch model ------------------------------------------------------------

if torch is not None:
    class TorchAttention(torch.nn.Module):
        """``s = q·κ`` (q fixed), masked softmax ``a``, ``h = Σ a v``, classifier, mean CE.

        ``tuned=False`` is the textbook model: key and embedding vectors gathered per token by
        ``nn.Embedding``, ``h`` by a batched matmul. ``tuned=True`` computes the same thing the
        fastest way found here: every word's score once (``K q``), then scores and embeddings
        gathered with ``index_select`` (whose backward is an ``index_add``, several times
        faster on CPU than ``nn.Embedding``'s sort-based backward) and ``h`` as a broadcast sum.
        """

        def __init__(self, params, spec, tuned: bool):
            super().__init__()
            dtype = getattr(torch, spec.dtype)
            trained = set(spec.trained)

            def tensor(name):
                return torch.tensor(np.array(params[name]), dtype=dtype)

            self.embeddings = torch.nn.Embedding.from_pretrained(
                tensor("embeddings"), freeze="embeddings" not in trained)
            self.keys = torch.nn.Embedding.from_pretrained(tensor("keys"),
                                                           freeze="keys" not in trained)
            self.register_buffer("query", tensor("query"))
            if spec.classifier == "linear":
                self.classifier = torch.nn.Linear(spec.d, params["classifier"].shape[0],
                                                  bias=False, dtype=dtype)
                self.classifier.weight = torch.nn.Parameter(
                    tensor("classifier"), requires_grad="classifier" in trained)
            else:
                hidden = torch.nn.Linear(spec.d, spec.hidden, dtype=dtype)
                output = torch.nn.Linear(spec.hidden, params["output_bias"].shape[0],
                                         dtype=dtype)
                for layer, w, b in ((hidden, "hidden_weight", "hidden_bias"),
                                    (output, "output_weight", "output_bias")):
                    layer.weight = torch.nn.Parameter(tensor(w), requires_grad=w in trained)
                    layer.bias = torch.nn.Parameter(tensor(b), requires_grad=b in trained)
                self.classifier = torch.nn.Sequential(hidden, torch.nn.ReLU(), output)
            self.tuned = tuned

        def forward(self, tokens, padding, labels):
            if self.tuned:
                flat = tokens.reshape(-1)
                s = torch.index_select(self.keys.weight @ self.query, 0, flat)
                s = s.view(tokens.shape)
                v = torch.index_select(self.embeddings.weight, 0, flat)
                v = v.view(*tokens.shape, -1)
            else:
                s = self.keys(tokens) @ self.query
                v = self.embeddings(tokens)
            a = torch.softmax(s.masked_fill(padding, -torch.inf), dim=1)
            h = (a[..., None] * v).sum(dim=1) if self.tuned else (a[:, None, :] @ v)[:, 0]
            return F.cross_entropy(self.classifier(h), labels)

        def named_gradients(self) -> dict:
            """Gradients under numeric's parameter names."""
            out = {"embeddings": self.embeddings.weight.grad, "keys": self.keys.weight.grad}
            if isinstance(self.classifier, torch.nn.Linear):
                out["classifier"] = self.classifier.weight.grad
            else:
                hidden, _, output = self.classifier
                out.update(hidden_weight=hidden.weight.grad, hidden_bias=hidden.bias.grad,
                           output_weight=output.weight.grad, output_bias=output.bias.grad)
            return {k: v.numpy() for k, v in out.items() if v is not None}

    def torch_inputs(data: numeric.Dataset):
        return (torch.from_numpy(np.array(data.safe_tokens)), torch.from_numpy(~data.mask),
                torch.from_numpy(np.array(data.labels)))

    def torch_step(model, inputs) -> float:
        """One forward+backward: the loss and every trained parameter's ``.grad``."""
        model.zero_grad(set_to_none=True)
        value = model(*inputs)
        value.backward()
        return value.item()


def check_torch_agrees(data: numeric.Dataset, seed: int) -> None:
    """Loss and gradients of both PyTorch variants equal numeric's to 1e-10 (float64);
    raises AssertionError (even under ``python -O``) if not.

    Checked at random parameters of order 1 (non-uniform attention), with some sentences
    padded so the masking is compared too.
    """
    tokens = np.array(data.tokens)
    tokens[::3, -4:] = numeric.PAD
    padded = numeric.Dataset(tokens, data.labels, data.n_words, data.n_classes)
    for name, spec in CONFIGS.items():
        params = numeric.init_params(spec, padded, seed=seed, key_scale=0.5,
                                     embedding_scale=0.5)
        value, grads = numeric.value_and_gradient(params, padded, spec, wrt=spec.trained)
        for tuned in (False, True):
            model = TorchAttention(params, spec, tuned)
            t_value = torch_step(model, torch_inputs(padded))
            t_grads = model.named_gradients()
            variant = f"{name}, {'tuned' if tuned else 'nn.Embedding'} PyTorch model"
            if abs(t_value - value) > 1e-10 * max(1.0, abs(value)):
                raise AssertionError(f"{variant}: loss {t_value!r} != numeric's {value!r}")
            if set(t_grads) != set(grads):
                raise AssertionError(f"{variant}: gradients of {sorted(t_grads)}, numeric "
                                     f"gives {sorted(grads)}")
            for k, g in grads.items():
                err = np.abs(t_grads[k] - g).max() / np.abs(g).max()
                if not err <= 1e-10:
                    raise AssertionError(f"{variant}: gradient of {k} differs from numeric's "
                                         f"by {err:.1e} (relative to its largest entry)")
    print("PyTorch check: loss and gradients of both variants agree with numeric to "
          "1e-10 (relative, float64) for " + ", ".join(CONFIGS) + ".")


# --- timing ----------------------------------------------------------------------------------

class Timing:
    """Seconds per call: wall clock and process CPU time (all of its threads)."""

    def __init__(self):
        self.wall, self.cpu = [], []

    def median(self) -> float:
        return float(np.median(self.wall))

    def best(self) -> float:
        return float(np.min(self.wall))

    def row(self) -> str:
        return (f"{1e3 * self.median():8.2f} {1e3 * self.best():8.2f} "
                f"{1e3 * np.median(self.cpu):8.2f}")


def time_calls(functions: dict, repeats: int, warmup: int, rounds: int = 3) -> dict:
    """Time each function in blocks of consecutive calls, the blocks taking turns over
    ``rounds`` rounds: drifting outside load hits all alike, while one contender's idle
    thread pools (OpenMP and OpenBLAS spin a while after work) do not land in another's
    block. Each block starts with untimed warm-up calls."""
    out = {name: Timing() for name in functions}
    per_round = [repeats // rounds + (r < repeats % rounds) for r in range(rounds)]
    for n in per_round:
        for name, f in functions.items():
            for _ in range(max(warmup, 1)):
                f()
            for _ in range(n):
                c0, t0 = time.process_time(), time.perf_counter()
                f()
                out[name].wall.append(time.perf_counter() - t0)
                out[name].cpu.append(time.process_time() - c0)
    return out


def contenders(data: numeric.Dataset, spec: numeric.ModelSpec, use_torch: bool) -> dict:
    params = numeric.init_params(spec, data, seed=ARGS.seed)
    out = {"numeric": lambda: numeric.value_and_gradient(params, data, spec, wrt=spec.trained)}
    if use_torch:
        inputs = torch_inputs(data)
        for label, tuned in (("torch nn.Embedding", False), ("torch tuned", True)):
            model = TorchAttention(params, spec, tuned)
            out[label] = lambda model=model: torch_step(model, inputs)
    return out


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment(use_torch: bool) -> None:
    print(f"python {platform.python_version()}, numpy {np.__version__}"
          + (f", torch {torch.__version__}" if use_torch else ""))
    pools = "OMP/OPENBLAS/MKL_NUM_THREADS" + (", torch.set_num_threads" if use_torch else "")
    print(f"cpu: {cpu_name()}, {os.cpu_count()} cores; threads: {ARGS.threads} ({pools})")
    print("OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)")
          + ", OPENBLAS_L2_SIZE=" + os.environ.get("OPENBLAS_L2_SIZE", "(unset)")
          + "  (if set, they pin OpenBLAS to an older, slower kernel)")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        print("  (threadpoolctl not importable: BLAS kernel not shown)")
    else:
        for pool in threadpool_info():
            print(f"  thread pool {pool['internal_api']}: kernel "
                  f"{pool.get('architecture') or '-'}, {pool['num_threads']} threads "
                  f"({Path(pool['filepath']).name})")
    print(f"load average (1 min) at start: {os.getloadavg()[0]:.2f}")


def report(name: str, small: dict, large: dict, use_torch: bool) -> None:
    for who in small:
        growth = large[who].best() / small[who].best()
        print(f"{name:14s} {who:19s} {small[who].row()} | {1e3 * large[who].median():8.1f} "
              f"{1e3 * large[who].best():8.1f} | {growth:6.1f}")
    if not use_torch:
        return
    for who in (w for w in small if w != "numeric"):
        ratios = [(t[who].median() / t["numeric"].median(), t[who].best() / t["numeric"].best())
                  for t in (small, large)]
        print(f"{'':14s}   numeric faster than {who}: " + ", ".join(
            f"{size} {med:.1f}x (median) {best:.1f}x (min)"
            for size, (med, best) in zip(("1x", "10x"), ratios)))


def main() -> int:
    use_torch = torch is not None and not ARGS.no_torch
    if use_torch:
        torch.set_num_threads(ARGS.threads)
    environment(use_torch)
    if torch is None:
        print("PyTorch is not importable: its rows are skipped.")

    t0 = time.perf_counter()
    data = synthetic(N_TRAIN, ARGS.seed)
    t_data = time.perf_counter() - t0
    t0 = time.perf_counter()
    data.flat_tokens, data.offsets  # noqa: B018 (cached properties: built here, once)
    t_layout = time.perf_counter() - t0
    big = synthetic(10 * N_TRAIN, ARGS.seed + 1)
    print(f"data: {data}; 10x: {big}")
    print(f"once per data set: generate + Dataset {1e3 * t_data:.1f} ms, "
          f"the flat token layout (then cached) {1e3 * t_layout:.1f} ms")
    if use_torch:
        check_torch_agrees(data, ARGS.seed)

    repeats_big = max(3, ARGS.repeats // 3)
    print(f"\nms per call ({ARGS.dtype}, {ARGS.threads} thread(s)): {ARGS.repeats} calls on "
          f"{N_TRAIN} sentences, {repeats_big} on {10 * N_TRAIN}, in 3 rounds of blocks "
          f"after warm-up; cpu = process CPU time (all threads); 10x/1x from the minima")
    print(f"{'model':14s} {'who':19s} {'median':>8s} {'min':>8s} {'cpu':>8s} | "
          f"{'10x med':>8s} {'10x min':>8s} | {'10x/1x':>6s}")
    for name, spec in CONFIGS.items():
        spec = with_spec_dtype(spec, ARGS.dtype)
        small = time_calls(contenders(data, spec, use_torch), ARGS.repeats, ARGS.warmup)
        large = time_calls(contenders(big, spec, use_torch), repeats_big, 1)
        report(name, small, large, use_torch)

    spec = with_spec_dtype(CONFIGS["Attn-TC"], ARGS.dtype)
    params = numeric.init_params(spec, data, seed=ARGS.seed)
    t = time_calls({"check": lambda: check_params(params, spec, data)}, 200, 5, 1)["check"]
    print(f"\ncheck_params (run inside every gradient call): {1e3 * t.median():.3f} ms per call")
    print(f"load average (1 min) at end: {os.getloadavg()[0]:.2f}; above about 0.5, other "
          f"processes shared the {os.cpu_count()} cores and the medians are inflated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
