"""``attnflow derive``: regenerate the engine from the derivation, check it, or render it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from attnflow.options import model_entry, output_file


def add_parser(sub):
    p = sub.add_parser("derive", help="regenerate derivations and numeric/_generated/",
                       description="Derive the gradient flow with SymPy and print it as NumPy "
                                   "into numeric/_generated/.")
    p.add_argument("--check", action="store_true",
                   help="change nothing; fail if any generated file differs from a fresh "
                        "derivation")
    p.add_argument("--render", choices=("md", "tex"),
                   help="also write the derivations as mathematics (Markdown or LaTeX)")
    p.add_argument("--out", type=output_file,
                   help="file for --render (default derivations.md/.tex)")
    p.add_argument("--model", type=model_entry, metavar="NAME|FILE.py",
                   help="derive one model (of the catalogue, see `attnflow models`, or a file "
                        "exposing MODEL) and print its gradients; numeric/_generated/ is left "
                        "alone")
    p.add_argument("--engine", type=output_file, metavar="FILE.py",
                   help="with --model: write its printed NumPy engine to FILE.py")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.out is not None and args.render is None:
        print("attnflow derive: --out names the file for --render; give --render md|tex",
              file=sys.stderr)
        return 2
    if args.engine is not None and args.model is None:
        print("attnflow derive: --engine writes the engine of --model; give --model",
              file=sys.stderr)
        return 2
    if args.model is not None:
        if args.check:
            print("attnflow derive: --check compares the catalogue's numeric/_generated/; "
                  "it does not take --model", file=sys.stderr)
            return 2
        return one_model(args)
    from symbolic.generate import GENERATED, check_generated, write_generated

    start = time.perf_counter()
    if args.check:
        diffs = check_generated()
        for diff in diffs:
            sys.stdout.write(diff)
        verdict = "stale: regenerate with `attnflow derive`" if diffs else "in sync"
        print(f"derive --check: {GENERATED} {verdict} ({time.perf_counter() - start:.1f} s)")
        status = 1 if diffs else 0
    else:
        changed = write_generated()
        print(f"derive: {len(changed)} file(s) rewritten in {GENERATED}"
              f"{': ' + ', '.join(changed) if changed else ''} "
              f"({time.perf_counter() - start:.1f} s)")
        status = 0
    if args.render:
        from symbolic.render import render

        out = args.out or Path(f"derivations.{args.render}")
        from numeric.outputs import write_text

        write_text(out, render(args.render))
        print(f"derive: derivations written to {out}")
    return status


def one_model(args) -> int:
    """Derive one model's gradients, print them, and write its engine or rendering."""
    import sympy as sp

    from numeric.outputs import write_text
    from symbolic.derive import derive
    from symbolic.print_dense import module_source

    entry = args.model
    start = time.perf_counter()
    for model in entry.printed():
        der = derive(model)
        print(f"{entry.name} ({model.loss}): {model.title}")
        for p in model.params:
            print(f"  ∂ℓ/∂{sp.sstr(p.ref)} = {sp.sstr(der.grads[p.name].to_sympy())}")
    print(f"derive: {entry.name} derived in {time.perf_counter() - start:.1f} s")
    if args.engine is not None:
        if entry.name == "paper":
            print("attnflow derive: the paper's engine is numeric/_generated/linear.py and "
                  "mlp.py (`attnflow derive` writes them)", file=sys.stderr)
            return 2
        write_text(args.engine, module_source(entry.printed()))
        print(f"derive: engine written to {args.engine}")
    if args.render:
        from symbolic.render import render_model

        out = args.out or Path(f"derivations-{entry.name}.{args.render}")
        write_text(out, render_model(entry, args.render))
        print(f"derive: derivations written to {out}")
    return 0
