"""``attnflow discover``: how many conservation laws, and which, for every data set."""

from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser(
        "discover", help="count and find the conservation laws of a configuration",
        description="Count the independent conservation laws for every data set (Marcotte et "
                    "al.'s Lie-algebra criterion on the derived per-sentence gradients at small "
                    "explicit sizes, two random points) and find them among polynomials of "
                    "degree ≤ 2; with the query fixed, also the topic-structure (A1–A3) laws.")
    p.add_argument("--classifier", choices=("linear", "mlp"), default="linear")
    p.add_argument("--trainable", default="embeddings,keys,classifier")
    p.add_argument("--loss", choices=("cross-entropy", "any"), default="cross-entropy")
    p.add_argument("--size", default="words=3,d=2,d_key=2,classes=2,hidden=2,max_len=3",
                   help="explicit sizes (default: %(default)s)")
    p.add_argument("--no-closed-forms", action="store_true",
                   help="only count (skip the degree-2 ansatz)")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from symbolic.discover import Setting, count_laws, polynomial_laws, topic_laws

    try:
        sizes = {k: int(v) for k, v in (x.split("=") for x in args.size.split(","))}
        trainable = tuple(x.strip() for x in args.trainable.split(",") if x.strip())
        setting = Setting(args.classifier, args.loss.replace("-", "_"), trainable, **sizes)
    except (ValueError, TypeError) as exc:
        print(f"attnflow discover: {exc}")
        return 2
    start = time.perf_counter()
    print(setting.describe())
    try:
        count = count_laws(setting)
    except (ValueError, RuntimeError) as exc:
        print(f"attnflow discover: {exc}")
        return 3
    print(count.summary())
    found = 0
    if not args.no_closed_forms:
        poly = polynomial_laws(setting)
        found = poly.independent
        print(f"{count.laws} independent laws at generic points; {found} found in closed form "
              f"(degree ≤ 2; each verified at fresh points, worst |∇Q·X|/(‖∇Q‖‖X‖) = "
              f"{poly.worst_residual:.1e}; singular-value gap {poly.singular_gap:.0f} decades):")
        for law in poly.laws:
            print(f"  {law}")
        if found < count.laws:
            print(f"  the other {count.laws - found} are not polynomials of degree ≤ 2")
    if "query" not in setting.trained and {"embeddings", "keys"} <= set(setting.trained):
        topic = topic_laws()
        print("topic structure (A1–A3, reduced per-topic-word system, ansatz: degree ≤ 2 in "
              "N = ‖v_t‖², s, E = e^{s−c}):")
        for law in topic.laws:
            print(f"  {law}")
    print(f"({time.perf_counter() - start:.1f} s)")
    return 0 if args.no_closed_forms or found == count.laws else 1
