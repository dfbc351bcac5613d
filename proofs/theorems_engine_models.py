"""The printed engines of the catalogue's other models compute their derived loss and gradient.

For each model printed by the padded printer (``symbolic/print_dense.py``: the
self-attention family), one theorem per module: per loss, the index-form derivation equals
``sympy.diff`` of the model written out by hand (``symbolic.explicit.ExplicitAttention``),
exactly, at a small size; and the printed engine's losses and mean-loss gradient on a padded
batch of sentences with distinct labels equal that writing's, evaluated at random points with
the complex-step derivative (``Im ℓ(θ + i·h·e)/h``: no cancellation, exact to rounding).
"""

from __future__ import annotations

import cmath
import itertools

import numpy as np
import sympy as sp

from proofs.kernel import Assumption, Measured, Step, Theorem
from symbolic.description import C, L, d
from symbolic.explicit import ExplicitAttention, compare_model
from symbolic.models.attention import d_head, heads, multi_head

LOSSES = ("cross-entropy", "squared-error")
#: Exact comparison of the derivation: one head, each other size at its smallest that still
#: has a sum (two tokens, two classes).
EXACT_SIZES = {L: 2, d: 1, d_head: 1, heads: 1, C: 2}
#: The engine's batch: two heads, widths 2, three classes, sentences of 3, 1 and 2 tokens
#: (padding) with the distinct labels 2, 0, 1 — a transposed, mis-summed or mis-masked axis,
#: or another sentence's label, shows.
WIDTH, HEAD_WIDTH, HEADS, CLASSES = 2, 2, 2, 3
SENTENCES = ((0, 3, 1), (2,), (4, 1))
LABELS = (2, 0, 1)
TEMPERATURE = 0.75
N_WORDS = 5
TOLERANCE = 1e-12
STEP = 1e-30


MODELS = Assumption(
    "M", "the multi-head self-attention model of symbolic/models/attention.py with each loss "
    "(the derivation printed into its engine)",
    content={loss: multi_head(loss) for loss in LOSSES},
    derivations=tuple(multi_head(loss) for loss in LOSSES))


def _engine_module():
    from numeric._generated import multi_head as module
    return module


ENGINE = Assumption(
    "E", "the engine of the self-attention family runs numeric/_generated/multi_head.py (that "
    "it is what the printer emits today is `attnflow derive --check`, run by the audit first)",
    content=_engine_module)


def derivation_matches_explicit(loss: str):
    """Every ∂ℓ/∂θ of the derivation equals sympy.diff of the loss written by hand."""
    def check(scope):
        model = scope.assumption("M")[loss]
        mismatches = compare_model(model, EXACT_SIZES)
        difference = sp.S.Zero if not mismatches else mismatches[0].difference
        return {f"{loss}, {EXACT_SIZES}": sp.Eq(difference, 0, evaluate=False)}
    return check


def _sentence_loss(params: dict, words, label: int, loss: str):
    """The loss written by hand for one sentence, at complex parameter values."""
    sizes = {L: len(words), d: WIDTH, d_head: HEAD_WIDTH, heads: HEADS, C: CLASSES}

    def value(name, at):
        if name == "Y":
            return 1.0 if at[0] == label else 0.0
        if name == "embeddings":
            return params[name][(words[at[0]],) + at[1:]]
        return params[name][at]
    return ExplicitAttention(sizes, loss, value, exp=cmath.exp, log=cmath.log,
                             tau=TEMPERATURE).loss


def _expected(params: dict, loss: str):
    """Each sentence's loss and the mean loss's gradient, by the complex step on the writing
    by hand, entry by entry."""
    losses = [_sentence_loss(params, w, y, loss).real for w, y in zip(SENTENCES, LABELS)]
    grads = {}
    for name, x in params.items():
        grads[name] = np.zeros(x.shape)
        for at in itertools.product(*map(range, x.shape)):
            moved = {n: v.astype(complex) for n, v in params.items()}
            moved[name][at] += 1j * STEP
            grads[name][at] = sum(_sentence_loss(moved, w, y, loss).imag
                                  for w, y in zip(SENTENCES, LABELS)) / STEP / len(SENTENCES)
    return losses, grads


def engine_matches_explicit(loss: str):
    """The printed engine on the padded batch against the writing by hand, at random points
    with entries k/8 (|k| ≤ 16), to relative ``TOLERANCE``."""
    def check(scope):
        scope.step(f"derivation-{loss}")
        forward, backward = scope.assumption("E")().FUNCTIONS[loss]
        from numeric.model import PAD
        length = max(map(len, SENTENCES))
        tokens = np.array([list(w) + [PAD] * (length - len(w)) for w in SENTENCES])
        mask = (tokens != PAD).astype(np.float64)
        safe = np.where(tokens == PAD, 0, tokens)
        labels = np.array(LABELS)
        shapes = {"embeddings": (N_WORDS, WIDTH), "classifier": (CLASSES, WIDTH)}
        shapes.update({n: (HEADS, HEAD_WIDTH, WIDTH) for n in
                       ("head_query", "head_key", "head_value", "head_output")})
        rng = np.random.default_rng(7)
        worst, where = 0.0, ""
        for _ in range(2):
            params = {n: rng.integers(-16, 17, size=s) / 8.0 for n, s in shapes.items()}
            fw = forward(safe, mask, labels, **params, tau=TEMPERATURE)
            grads = backward(fw, safe, mask, labels, **params, tau=TEMPERATURE,
                             wrt=set(shapes))
            losses, expected = _expected(params, loss)
            scale = max(1.0, max(abs(x) for x in losses),
                        max(np.abs(g).max() for g in expected.values()))
            got = [(f"ℓ of sentence {b}", float(fw["ell"][b]), e)
                   for b, e in enumerate(losses)]
            got += [(f"∂L/∂{n}{list(at)}", float(grads[n][at]), float(expected[n][at]))
                    for n in shapes for at in itertools.product(*map(range, shapes[n]))]
            for label, g, e in got:
                error = abs(g - e) / scale
                if not error <= worst:
                    worst, where = error, label
        return Measured(worst, TOLERANCE, f"2 random points, a batch of sentences of "
                                          f"{', '.join(str(len(w)) for w in SENTENCES)} tokens "
                                          f"(padded) with labels {LABELS}, {HEADS} heads, d = "
                                          f"{WIDTH}, d_head = {HEAD_WIDTH}, {CLASSES} classes; "
                                          f"worst at {where or 'none'} (relative to "
                                          f"max(1, |values|))")
    return check


STATEMENT = (
    "For the self-attention family with cross-entropy and with squared error, the engine "
    "printed from the model's description (numeric/_generated/multi_head.py) computes the loss "
    "ℓ and every ∂ℓ/∂θ of the model as written by hand: its derivation exactly on an "
    "explicit sentence (symbolic), and the engine to float64 rounding on a padded batch.")


def printed_engine() -> Theorem:
    steps = []
    for loss in LOSSES:
        steps += [
            Step(f"derivation-{loss}", f"{loss}: the index-form gradients equal sympy.diff of "
                 f"the loss written by hand, entry by entry, at {EXACT_SIZES}", "instance",
                 derivation_matches_explicit(loss), uses=("M",)),
            Step(f"engine-{loss}", f"{loss}: the printed engine's losses and mean-loss "
                 f"gradient on a padded batch with labels {LABELS} equal the complex-step "
                 f"derivatives of the loss written by hand (as step derivation-{loss} checks "
                 f"it against the derivation) at random points", "numeric",
                 engine_matches_explicit(loss), uses=("E", f"derivation-{loss}")),
        ]
    return Theorem("printed-engine-multi-head",
                   "The printed engine of the self-attention family computes its derived "
                   "loss and gradient", STATEMENT, (MODELS, ENGINE), tuple(steps))


def theorems() -> tuple[Theorem, ...]:
    return (printed_engine(),)
