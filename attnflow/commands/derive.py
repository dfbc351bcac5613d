"""``attnflow derive``: regenerate the engine from the derivation, check it, or render it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from attnflow.options import output_file


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
    p.set_defaults(func=run)


def run(args) -> int:
    if args.out is not None and args.render is None:
        print("attnflow derive: --out names the file for --render; give --render md|tex",
              file=sys.stderr)
        return 2
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
