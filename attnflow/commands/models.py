"""``attnflow models``: the catalogue of models, or one model's description."""

from __future__ import annotations

import sympy as sp

from attnflow.options import model_entry


def add_parser(sub):
    p = sub.add_parser("models", help="list the catalogue of models, or describe one",
                       description="Without MODEL: the catalogue, one line each. With MODEL (a "
                                   "name, or FILE.py exposing MODEL): its index kinds, "
                                   "parameters and nodes, as the derivation reads them.")
    p.add_argument("model", nargs="?", type=model_entry, metavar="MODEL")
    p.set_defaults(func=run)


def run(args) -> int:
    from symbolic.models import CATALOGUE

    if args.model is None:
        width = max(map(len, CATALOGUE))
        for name, entry in CATALOGUE.items():
            print(f"{name:<{width}}  {entry.summary}")
        print("\n`attnflow models NAME` describes one; `--model NAME|FILE.py` selects it in "
              "derive and discover, `--model NAME` in check; `attnflow laws FILE` reads the "
              "model a trajectory file holds.")
        return 0
    describe(args.model)
    return 0


def describe(entry) -> None:
    model = entry.model()
    print(f"{entry.name}: {entry.summary}")
    print(f"losses: {', '.join(entry.losses)}"
          + (f"; fixed sizes: {', '.join(f'{k}={v}' for k, v in entry.fixed.items())}"
             if entry.fixed else ""))
    print("index kinds:")
    for kind in model.kinds:
        print(f"  {kind.name:<10} {', '.join(kind.letters)} < {kind.size}")
    print("parameters:")
    for p in model.params:
        how = "gathered per token by word id" if p.per_token else "shared"
        print(f"  {p.name:<16} {sp.sstr(p.ref):<14} {how}: {p.meaning}")
    if model.constants:
        print(f"constants: {', '.join(map(str, model.constants))}")
    print("nodes (one sentence):")
    for n in model.nodes:
        print(f"  {sp.sstr(n.ref)} = {sp.sstr(n.definition)}    ({n.meaning})")
