"""The printed engine computes the derived loss and gradient (the forward pass in the chain).

``attnflow derive --check`` shows that ``numeric/_generated/`` is what the printer emits
today, but the forward pass (softmax, log-sum-exp, logits) is a printer template: a wrong
template would be printed faithfully. So, for each classifier, the audit runs the engine on
one explicit sentence and compares its loss and every gradient entry with the explicit
instance of the model (``symbolic.explicit.ExplicitModel``: the loss written out entry by
entry and differentiated by SymPy), which one step first ties exactly to the index-form
derivation the proofs use. A finite-difference step checks the engine against itself at
random sizes (with padding), as a smoke test of the batching the explicit sentence does not
exercise.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from proofs import derivations as D
from proofs.kernel import Assumption, Measured, Step, Theorem
from symbolic.explicit import ExplicitModel, Sizes, compare

#: Sizes of the explicit sentence the engine runs on: tokens, d, d_key, classes, hidden units
#: (each axis ≥ 2, so a transposed or mis-summed axis shows; three tokens and classes for the
#: linear classifier; the two-layer one at 2 keeps the symbolic differentiation under 1 s).
SIZES = {"linear": Sizes(3, 2, 2, 3), "mlp": Sizes(2, 2, 2, 2, 2)}
#: Sizes at which the derivation is compared exactly with the explicit loss in the audit
#: (the test suite compares a larger grid; exact comparison grows fast with the sizes).
EXACT_SIZES = {"linear": Sizes(2, 1, 1, 2), "mlp": Sizes(2, 1, 1, 2, 2)}
#: Relative agreement demanded of float64 evaluations of the same formula (≈ 10⁴ ε).
TOLERANCE = 1e-12
POINTS = 3


def _engine_modules():
    """The printed modules as the engine loads them (``numeric.engine`` dispatches to these)."""
    from numeric import engine
    return dict(engine._MODULES)


MODELS = Assumption(
    "M", "the model of symbolic.model with each classifier and cross-entropy (the derivation "
    "the theorems reason about)", content={m.classifier: m for m in D.CLASSIFIERS},
    derivations=D.CLASSIFIERS)
ENGINE = Assumption(
    "E", "the engine runs the modules printed into numeric/_generated/ (one per classifier; "
    "that they are what the printer emits today is `attnflow derive --check`, run by the "
    "audit first)", content=_engine_modules)


def derivation_matches_explicit(classifier: str):
    """Every entry of every ∂ℓ/∂θ of the index-form derivation equals sympy.diff of the
    explicit loss, exactly, at the explicit size."""
    def check(scope):
        model = scope.assumption("M")[classifier]
        sizes = EXACT_SIZES[classifier]
        mismatches = compare(model.classifier, sizes)
        difference = sp.S.Zero if not mismatches else mismatches[0].difference
        return {f"{classifier}, {sizes}": sp.Eq(difference, 0, evaluate=False)}
    return check


def _explicit_functions(classifier: str):
    """NumPy functions of the explicit loss and of its gradient in every parameter entry."""
    ex = ExplicitModel(classifier, SIZES[classifier])
    entries = [(name, at, ex.entry(name, at)) for name, table in ex.params.items()
               for at in _positions(table)]
    args = [sym for _, _, sym in entries] + list(ex.Y)
    loss = sp.lambdify(args, ex.loss, "numpy", cse=True)
    grad = sp.lambdify(args, [sp.diff(ex.loss, sym) for _, _, sym in entries], "numpy",
                       cse=True)
    pre = sp.lambdify(args, ex.u if classifier == "mlp" else [sp.S.One], "numpy")
    return ex, entries, loss, grad, pre


def _positions(table):
    if isinstance(table[0], list):
        return [(i, j) for i in range(len(table)) for j in range(len(table[0]))]
    return [(i,) for i in range(len(table))]


#: Labels of the batch the engine runs, one sentence per label: all distinct and not in
#: order, so a printed engine that reads another sentence's label (a rolled or reversed
#: label array) computes another loss.
LABELS = {"linear": (2, 0, 1), "mlp": (1, 0)}
PER_TOKEN = ("embeddings", "keys")


def _engine_arrays(ex: ExplicitModel, entries, per_sentence):
    """The explicit parameters as the engine's arrays: token i of sentence b is word
    b·L + i (each sentence its own words), shared parameters as they are."""
    n = ex.n
    arrays = {name: np.zeros(np.shape(np.array(table, dtype=object)))
              for name, table in ex.params.items()}
    for name in PER_TOKEN:
        arrays[name] = np.zeros((len(per_sentence) * n.tokens,) + arrays[name].shape[1:])
    for b, values in enumerate(per_sentence):
        for (name, at, _), value in zip(entries, values):
            arrays[name][_word_entry(name, at, b, n)] = value
    return arrays


def _word_entry(name, at, sentence, n):
    """Where the entry ``at`` of the explicit sentence ``sentence`` sits in the engine's
    arrays."""
    return (sentence * n.tokens + at[0],) + tuple(at[1:]) if name in PER_TOKEN else at


def _batch_values(rng, entries, count):
    """``count`` sentences' values: their own embedding and key rows, shared parameters."""
    shared = rng.integers(-16, 17, size=len(entries)) / 8.0
    out = []
    for _ in range(count):
        own = rng.integers(-16, 17, size=len(entries)) / 8.0
        out.append(np.where([name in PER_TOKEN for name, _, _ in entries], own, shared))
    return out


def _expected(ex, entries, per_sentence, targets, loss, grad):
    """The explicit instance on the batch: each sentence's loss, and the mean-loss gradient
    of every entry of the engine's arrays (a sentence's own rows, the shared parameters
    summed over the sentences)."""
    losses = [loss(*values, *y) for values, y in zip(per_sentence, targets)]
    expected: dict = {}
    for b, (values, y) in enumerate(zip(per_sentence, targets)):
        for (name, at, _), g in zip(entries, grad(*values, *y)):
            key = (name, _word_entry(name, at, b, ex.n))
            expected[key] = expected.get(key, 0.0) + g / len(per_sentence)
    return losses, expected


def printed_orders(module) -> dict:
    """Each contraction order a printed module holds, ``name → (forward, backward)``: the
    linear module prints two (through the context and through the classes) and lets
    ``forward`` pick the cheaper at run time, so each is checked, whichever the sizes pick."""
    orders = {order: (getattr(module, f"forward_{order}"), getattr(module, f"backward_{order}"))
              for order in ("context", "classes") if hasattr(module, f"forward_{order}")}
    return orders or {"": (module.forward, module.backward)}


def engine_matches_explicit(classifier: str):
    """The engine's losses and mean-loss gradient on a batch of sentences with distinct labels
    equal the explicit instance's, at random points with entries k/8 (|k| ≤ 16), to relative
    ``TOLERANCE``, in every printed contraction order."""
    def check(scope):
        scope.step(f"derivation-{classifier}")      # the explicit instance is the derivation
        module = scope.assumption("E")()[classifier]
        from numeric.model import Dataset
        ex, entries, loss, grad, pre = _explicit_functions(classifier)
        orders = printed_orders(module)
        n, labels = ex.n, LABELS[classifier]
        tokens = np.arange(len(labels) * n.tokens).reshape(len(labels), n.tokens)
        data = Dataset(tokens, np.array(labels), tokens.size, n.classes)
        targets = [[1.0 if c == y else 0.0 for c in range(n.classes)] for y in labels]
        rng = np.random.default_rng(8)
        worst, where, tried = 0.0, "", 0
        while tried < POINTS:
            per_sentence = _batch_values(rng, entries, len(labels))
            if min(abs(x) for values, y in zip(per_sentence, targets)
                   for x in pre(*values, *y)) < 1e-3:
                continue                                # a ReLU at its kink: not differentiable
            tried += 1
            arrays = _engine_arrays(ex, entries, per_sentence)
            losses, expected = _expected(ex, entries, per_sentence, targets, loss, grad)
            scale = max(1.0, max(abs(x) for x in losses + list(expected.values())))
            for order, (forward, backward) in orders.items():
                fw = forward(data.flat_tokens, data.offsets, data.labels, **arrays)
                grads = backward(fw, data.flat_tokens, data.offsets, data.labels,
                                 **arrays, wrt=set(arrays))
                got = [(f"ℓ of sentence {b}", float(fw["ell"][b]), e)
                       for b, e in enumerate(losses)]
                got += [(f"∂L/∂{name}{list(at)}", float(grads[name][at]), e)
                        for (name, at), e in expected.items()]
                for label_, g, e in got:
                    error = abs(g - e) / scale
                    if not error <= worst:
                        worst, where = error, f"{label_} ({order or 'the only'} order)"
        return Measured(worst, TOLERANCE, f"{POINTS} random points, a batch of {len(labels)} "
                                          f"sentences with labels {labels}, sizes {n}, orders "
                                          f"{', '.join(o or 'one' for o in orders)}; worst at "
                                          f"{where or 'none'} (relative to max(1, |values|))")
    return check


def finite_differences(classifier: str):
    """The engine's gradient against central differences of its own loss, on random
    batches with padding (numeric.checks.fd_check, error O(h²) + O(ε/h) ≤ 1e-9)."""
    def check(scope):
        scope.assumption("E")
        from numeric.checks import fd_check, random_problem
        worst, where = 0.0, ""
        for seed in (1, 2):
            params, data, spec = random_problem(seed, classifier,
                                                ("keys", "embeddings", "query", "classifier"))
            result = fd_check(params, data, spec, seed=seed)
            if not result.worst <= worst:
                worst, where = result.worst, result.where
        return Measured(worst, 1e-6, f"2 random batches with padding, worst at {where}")
    return check


STATEMENT = (
    "For the linear and the two-layer classifier, the engine's forward pass and gradient "
    "(the code printed into numeric/_generated/) compute the loss ℓ and every ∂ℓ/∂θ of the "
    "model whose derivation the theorems use: exactly as that derivation on an explicit "
    "sentence (symbolic), and to float64 rounding when run.")


def printed_engine() -> Theorem:
    steps = []
    for classifier in ("linear", "mlp"):
        steps += [
            Step(f"derivation-{classifier}", f"{classifier}: the index-form gradients equal "
                 f"sympy.diff of the explicit loss, entry by entry, at "
                 f"{EXACT_SIZES[classifier]}", "instance", derivation_matches_explicit(classifier),
                 uses=("M",)),
            Step(f"engine-{classifier}", f"{classifier}: the printed engine's losses and "
                 f"mean-loss gradient on a batch of explicit sentences ({SIZES[classifier]}, "
                 f"labels {LABELS[classifier]}) equal those of the explicit instance (the "
                 f"model written out, as step derivation-{classifier} checks it against the "
                 f"derivation) at random points", "numeric",
                 engine_matches_explicit(classifier),
                 uses=("E", f"derivation-{classifier}")),
            Step(f"fd-{classifier}", f"{classifier}: the printed gradient agrees with central "
                 f"differences of the printed loss on random padded batches", "numeric",
                 finite_differences(classifier), uses=("E",)),
        ]
    return Theorem("printed-engine", "The printed engine computes the derived loss and gradient",
                   STATEMENT, (MODELS, ENGINE), tuple(steps))


def theorems() -> tuple[Theorem, ...]:
    return (printed_engine(),)
