"""``attnflow audit [--json FILE] [--markdown FILE]``: re-check every proof step."""

from __future__ import annotations

from attnflow.options import output_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "audit", help="re-check every step of every theorem",
        description="Run `derive --check`, then re-check every step of every registered "
                    "theorem (including the printed engine against the explicit model) and "
                    "print, per theorem, its statement, assumptions and steps with how each "
                    "was checked, its outcome and time, and what it trusts rather than checks "
                    "(cited steps, prose assumptions, hypotheses in symbol declarations, "
                    "rewritings). Exit status 1 if any step or theorem-level rule fails or "
                    "the generated code differs from the derivation.")
    parser.add_argument("--json", metavar="FILE", type=output_file,
                        help="write the audit certificate (JSON) to FILE")
    parser.add_argument("--markdown", metavar="FILE", type=output_file,
                        help="write a human report with the mathematics rendered to FILE")
    parser.set_defaults(func=run)


def run(args) -> int:
    from proofs import audit

    report = audit.run_audit(on_theorem=lambda o: print(audit.format_theorem(o) + "\n",
                                                        flush=True))
    print(audit.format_summary(report))
    if args.json is not None:
        print(f"certificate written to {audit.write_certificate(report, args.json)}")
    if args.markdown is not None:
        print(f"report written to {audit.write_markdown(report, args.markdown)}")
    return 0 if report.ok else 1
