"""The syntax of a candidate (symbolic/grammar.py): nothing the user types is executed, every
refusal is one line, the reading is bounded, and every expression the documentation and the
tests use reads as it did when SymPy's sympify read it."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from attnflow.cli import main
from proofs.conjecture import prove
from symbolic import grammar as G
from symbolic import laws as LW
from symbolic import model as M

ROOT = Path(__file__).resolve().parents[1]
LINEAR, MLP = M.Model("linear"), M.Model("mlp")


def one_line_refusal(argv, capsys):
    """Run ``attnflow`` in-process; the exit status and the stderr line (exactly one)."""
    status = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert len(err.splitlines()) == 1, err
    return status, err


# --- nothing the user types is executed --------------------------------------------------------

def payloads(sentinel: Path) -> list[str]:
    """Inputs that ran code under sympify (each would create ``sentinel``), and others that
    try the same by other routes."""
    s = str(sentinel)
    return [
        f"__import__('os').system('touch {s}')",
        f'V[w,k] # """ if __import__("os").system("touch {s}") else """',
        f"exec(\"open('{s}','w')\")",
        f"eval(\"open('{s}','w')\")",
        f"open('{s}','w')",
        f"(lambda: open('{s}','w'))()",
        f"V[w,k] if open('{s}','w') else 0",
        f"f\"{{open('{s}','w')}}\"",
        f"__builtins__.open('{s}','w')",
        "q[r].__class__.__mro__[-1].__subclasses__()",
        f"getattr(q, '__class__')('{s}')",
        f"[open('{s}','w')]",
        f"(open('{s}','w'), 1)",
        f"{{'a': open('{s}','w')}}",
        f"q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1)) + 0*__import__('os').system('touch {s}')",
        f"Sum(q[r], (r, 0, __import__('os').system('touch {s}')))",
        f"exp(__import__('os').system('touch {s}'))",
        f"V[__import__('os').system('touch {s}'), k]",
        f"q[r]\n__import__('os').system('touch {s}')",
        f"q[r]; __import__('os').system('touch {s}')",
        f"(x := open('{s}','w'))",
        "Symbol('x') + Function('f')(q[r])",
        f"S('open(\"{s}\",\"w\")')",
        f"sympify('open(\"{s}\",\"w\")')",
        "Eq(V[w,k], 0)",
        "Matrix([1, 2])",
        "'a string'",
        "None",
        "True",
        "V[w] ",
        "V.foo",
        "q[r] @ q[t]",
        "~q[r]",
        "q[r] | 1",
        "*q",
        "0x10*q[r]",
        "1j*q[r]",
        "q[r] == q[r]",
        "not q[r]",
        # unicode: NFKC-equal letters Python would read as q, zero-width and direction marks
        "\uff51[r]",
        "\U0001d42a[r]",
        "q[r]\u200b",
        "q[r]\u202e",
        "q[r]\x00",
    ]


def test_no_payload_is_executed_and_each_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "pwned"
    for payload in payloads(sentinel):
        status, err = one_line_refusal(["conjecture", "--", payload], capsys)
        assert status == 2, payload
        assert err.startswith("attnflow conjecture: "), err
        assert not sentinel.exists(), payload
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_payloads_are_refused_on_the_trajectory_path_too(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "pwned"
    case = "seed=0,n_sentences=2,a2=no"
    for payload in payloads(sentinel)[:4]:
        status, _ = one_line_refusal(["conjecture", "--trajectory", case, "--", payload],
                                     capsys)
        assert status == 2 and not sentinel.exists(), payload


def test_payload_in_a_fresh_process_runs_nothing(tmp_path):
    """As a shell user would run it: exit 2, one line, no traceback, no file."""
    sentinel = tmp_path / "pwned"
    for payload in payloads(sentinel)[:2]:
        done = subprocess.run([sys.executable, "-m", "attnflow", "conjecture", payload],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.splitlines()) == 1 and "Traceback" not in done.stderr
        assert not sentinel.exists()


def test_the_api_refuses_payloads_and_non_text_with_a_value_error(tmp_path):
    sentinel = tmp_path / "pwned"
    for payload in payloads(sentinel)[:6] + [["q[r]"], ("q[r]",), None, True, 3, b"q[r]"]:
        with pytest.raises(ValueError):
            prove(payload, search=False, kernel=False)
    assert not sentinel.exists()


def test_a_law_statement_cannot_end_the_docstring_of_the_printed_evaluators(tmp_path):
    """The raw text once reached a docstring of evaluators that are compiled and run; a
    statement with quotes (given through the API) now stays inside the docstring."""
    from proofs.counterexample import evaluators
    sentinel = tmp_path / "pwned"
    statement = (f'x """ + __import__("os").system("touch {sentinel}") + """ \\" \\\\ '
                 f"''' \n# end")
    law = LW.declare("hostile", statement, "Sum(K[w,r],(w,0,W-1))", 0,
                     models=(LINEAR,), classifiers=("linear",),
                     assumptions=(LW.trains("keys"),))
    ev = evaluators(law)
    assert not sentinel.exists()
    assert ev.terms.__doc__.startswith("Law hostile: x ")
    assert '__import__("os")' in ev.terms.__doc__  # as text, inside the docstring


def test_printed_code_carries_the_parsed_candidate_not_the_raw_text():
    from proofs.conjecture import candidate_law
    from proofs.counterexample import evaluators
    raw = "V[w,k]*2  -  q[r]*K[w,r]"
    law = candidate_law(raw, "linear", ("embeddings", "keys", "query"))
    source = evaluators(law).source
    assert raw not in source and law.statement == "-K[w,r]*q[r] + 2*V[w,k] is constant"
    assert law.statement in source


def test_a_law_name_that_is_not_an_identifier_is_not_printed_as_code():
    from symbolic.print_laws import law_functions
    law = LW.declare("x;import_os", "x", "Sum(K[w,r],(w,0,W-1))", 0, models=(LINEAR,),
                     classifiers=("linear",), assumptions=(LW.trains("keys"),))
    with pytest.raises(ValueError, match="identifiers"):
        law_functions(law)


# --- one line: what was found, where, what is allowed ----------------------------------------

@pytest.mark.parametrize("text, found", [
    ("__import__('os')", "__import__(…) at column 1: a call"),
    ("q[r] + foo", "unknown symbol foo at column 8"),
    ("lambda: 0", "'lambda' at column 1: Python syntax"),
    ("V[w,k] if 1 else 0", "'if' at column 8: Python syntax"),
    ("'x'", "\"'\" at column 1: a string"),
    ("V.foo", "'.' at column 2: attribute access"),
    ("(1, 2)", "',' at column 3: a tuple"),
    ("[1]", "'[' at column 1: a list"),
    ("V[w,k] = 0", "'=' at column 8: a comparison or an equation"),
    ("V[w]", "V at column 1 takes 2 indices (word, embedding), got 1: write V[w,k]"),
    ("V", "V at column 1 is an array with 2 indices: write V[w,k]"),
    ("U[0,k] + U[1,k]", "U[…0…] at column 3: a fixed entry"),
    ("Sum(K[w,k],(w,0,W-1))", "k at column 9 is an embedding index, but axis 2 of K is a "
                              "key axis (K[w,r]); key indices are r, t"),
    ("Sum(K[v,r],(v,0,W-1))", "v at column 7 in K[…] is not an index letter; word indices "
                              "are w, w_x, w_y"),
    ("U[c,k]", "c at column 3 in U[…] is a constant; class indices are e"),
    ("Sum(V[w,k],(k,1,d-1))", "must be the full range of k (embedding): (k,0,d-1)"),
    ("Sum(V[w,k])", "')' at column 11 where ',' and the range"),
    ("2 V[w,k]", "missing operator before 'V' at column 3"),
    ("q[r", "the end of the candidate where ',' or ']'"),
    ("(q[r]", "'(' at column 1 is never closed"),
    ("q[r])", "unbalanced ')' at column 5"),
    ("1e-3*q[r]", "exponent notation"),
    ("q[r]**q[t]", "exponent at column 5 is not a number"),
    ("q[r]**(1/2)", "exponent at column 5 is 1/2"),
    ("1/0", "division by zero at column 2"),
    ("q[r]/(V[w,k]-V[w,k])", "division by zero at column 5"),
    ("0**-1*q[r]", "0 to a negative power at column 2"),
    ("log(0)*q[r]", "log(0) at column 1: the value is undefined"),
    ("log(-1)*q[r]", "log(-1) at column 1: the value is not real"),
    ("nan", "unknown symbol nan"),
    ("oo", "unknown symbol oo"),
    ("zoo", "unknown symbol zoo"),
    ("V[w,k]*0*oo", "unknown symbol oo at column 10"),
    ("g(W)", "g(…) at column 1: a call, and the only functions are Sum, exp, log"),
    ("exp", "exp at column 1 is a function: write exp(…)"),
    ("\uff51[r]", "U+FF51 at column 1: a non-ASCII character"),
    ("q[r]\n", "U+000A at column 5: a control character"),
    ("", "the candidate is empty"),
])
def test_refusal_names_what_was_found_and_where(text, found, capsys):
    with pytest.raises(G.GrammarError) as err:
        G.read(text, LINEAR)
    message = str(err.value)
    assert found in message and "\n" not in message
    status, line = one_line_refusal(["conjecture", "--", text], capsys)
    assert status == 2 and found in line


def test_unknown_names_are_answered_with_the_model_s_names():
    with pytest.raises(G.GrammarError) as err:
        G.read("q[r] + foo", MLP)
    message = str(err.value)
    for name in ("W1[n,k]", "b2[e]", "s[w]", "d_key", "QQ", "Sum"):
        assert name in message
    assert "U[" not in message  # the MLP has no U


# --- bounded ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, bound", [
    ("10**10**10", "an exponent is an integer from -8 to 8"),
    ("factorial(10**9)", "a call"),
    ("+".join(["q[r]"] * 15000), f"at most {G.MAX_LENGTH}"),
    ("+".join(["1"] * 900), f"at most {G.MAX_TOKENS}"),
    ("(" * 40 + "q[r]" + ")" * 40, f"nesting deeper than {G.MAX_DEPTH}"),
    ("-" * 40 + "q[r]", f"nesting deeper than {G.MAX_DEPTH}"),
    ("q[r]" + "**2" * 40, f"nesting deeper than {G.MAX_DEPTH}"),
    ("exp(" * 40 + "q[r]" + ")" * 40, f"nesting deeper than {G.MAX_DEPTH}"),
    ("1" * 31 + "*q[r]", f"more than {G.MAX_DIGITS} digits"),
    ("(10**8)**8*q[r]", f"more than {G.MAX_DIGITS} digits"),
    ("(q[r]**8)**2", "exponent 16"),
    ("q[r]**8*q[r]**8", "exponent 16"),
    ("(q[r] + K[w,r] + V[w,k] + U[e,k])**8", "multiplies out to 165 terms"),
])
def test_hostile_sizes_are_refused_at_once_with_the_bound(text, bound, capsys):
    with pytest.raises(G.GrammarError, match=bound.replace("(", r"\(").replace("*", r"\*")):
        G.read(text, LINEAR)
    status, _ = one_line_refusal(["conjecture", "--", text], capsys)
    assert status == 2


ALPHABET = "qKVUsWwkrtedcmQ_[](),+-*/^. 0123456789'\"#:=<>!\\{}ab\u00e9\uff51\n"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, max_size=40))
def test_any_text_is_read_or_refused_with_one_line(text):
    """The only outcomes: an expression of the syntax, or a GrammarError of one line."""
    try:
        expr = G.read(text, LINEAR)
    except G.GrammarError as err:
        assert "\n" not in str(err)
        return
    names = G.namespace(LINEAR)
    assert G.parse(G.text(expr, names), names) == expr


PIECES = ["q[r]", "K[w,r]", "V[w,k]", "U[e,k]", "s[w]", "W", "d", "QQ", "c", "m", "k", "w", "0",
          "1", "2", "0.5", "8", "10", "+", "-", "*", "/", "^", "**", "(", ")", "Sum(",
          ",(k,0,d-1))", ",(w,0,W-1))", "exp(", "log(", ",", " ", "[", "]", "r", "e"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25))
def test_any_arrangement_of_the_syntax_s_pieces_reads_back_or_is_refused(pieces):
    """Text near the syntax (most of it well formed): an expression whose canonical text
    reads back to it, or a GrammarError of one line."""
    names = G.namespace(LINEAR)
    try:
        expr = G.parse("".join(pieces), names)
    except G.GrammarError as err:
        assert "\n" not in str(err)
        return
    assert G.parse(G.text(expr, names), names) == expr


# --- the namespace is the model's ------------------------------------------------------------

def test_the_namespace_is_read_from_the_model_not_a_fixed_list():
    """A model with other array names gets those names (and only those)."""
    keys = sp.IndexedBase("X")
    toy = SimpleNamespace(
        params=(M.Param("keys", keys, (M.i, M.r), True, "key of the word at token i"),
                M.Param("query", M.q, (M.r,), False, "query")),
        nodes=[M.Node(M.s, (M.i,), sp.Sum(M.q[M.r] * keys[M.i, M.r], (M.r, 0, M.d_key - 1)),
                      "score")])
    names = G.namespace(toy)
    assert set(names.arrays) == {"X", "q", "s"}
    assert G.parse("Sum(X[w,r]**2,(r,0,d_key-1))", names) == sp.Sum(
        keys[LW.w, M.r] ** 2, (M.r, 0, M.d_key - 1))
    with pytest.raises(G.GrammarError, match=r"V\[…\] at column 1: only the model's arrays "
                       r"take indices \(X\[w,r\], q\[r\], s\[w\]\)"):
        G.parse("V[w,k]", names)
    with pytest.raises(G.GrammarError, match="k at column 5 in X.* is not an index letter"):
        G.parse("X[w,k]", names)
    assert set(names.sizes) == {"W", "L", "d_key"}


def test_help_shows_the_syntax_and_examples_that_parse(capsys):
    with pytest.raises(SystemExit) as done:
        main(["conjecture", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "Sum(f, (k,0,d-1))" in out and "exp(f), log(f)" in out
    examples = [x.split("'")[1] for x in out.splitlines() if x.startswith("  attnflow ")]
    assert len(examples) == 3
    for example in examples:
        G.read(example, LINEAR)
    names = {**G.namespace(LINEAR).arrays, **G.namespace(MLP).arrays}
    assert all(f"{n}[" in out for n in names)


# --- every expression in use reads as sympify read it ----------------------------------------

#: Every candidate the README's Conjectures section and the tests write, and the generic
#: candidates of proofs/conjecture.py.
IN_USE = [
    "q[r]*K[w,t] - q[t]*K[w,r]",
    "q[r]*q[t] - Sum(K[w,r]*K[w,t],(w,0,W-1))",
    "q[r]*q[t] + Sum(K[w,r]*K[w,t],(w,0,W-1))",
    "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w] - c)/m)/QQ",
    "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w] + exp(s[w] - c)/(m+1))/QQ",
    "Sum(V[w,k]**2,(k,0,d-1))/2 - (s[w_x] + exp(s[w_x]-c)/m)/QQ",
    "-exp(s[w] - c)/(QQ*m) + Sum(V[w,k]**2,(k,0,d-1))/2 - s[w]/QQ",
    "Sum(K[w,r],(w,0,W-1))",
    "Sum(U[e,k],(e,0,C-1))",
    "Sum(U[e,k]*U[e,l],(e,0,C-1)) - Sum(V[w,k]*V[w,l],(w,0,W-1))",
    "Sum(W1[n,k]*W1[n,l],(n,0,H-1)) - Sum(V[w,k]*V[w,l],(w,0,W-1))",
    "Sum(W2[e,n]**2,(e,0,C-1)) - Sum(W1[n,k]**2,(k,0,d-1)) - b1[n]**2",
    "Sum(W2[e,n]**2,(e,0,C-1)) + Sum(W1[n,k]**2,(k,0,d-1)) - b1[n]**2",
    "Sum(W2[e,n],(e,0,C-1))",
    "Sum(b2[e],(e,0,C-1))",
    "V[w,k] - V[w_x,k]",
    "K[w,r] - K[w_x,r]",
    "Sum(V[w,k]**2,(k,0,d-1)) - m*s[w]",
    "s[w] + m",
    "s[w] + c",
    "W*q[r] - Sum(K[w,r],(w,0,W-1))",
    "L*q[r]",
    "q[r]",
    "q[r]*q[t]",
    "V[w,k]",
    "V[w_x,k]",
    "Sum(V[w,k]**2, (w, 0, W - 1))",
    "Sum(K[w,r]*K[w,t], (w, 0, W - 1))",
    "Sum(V[w,k]**3, (k,0,d-1))",
]


def old_reading(text: str):
    """What ``symbolic.laws._parse`` gave before the grammar: sympify with the model's names
    (run here on the constant strings above only)."""
    names = {n: getattr(M, n) for n in ("q", "K", "V", "U", "W1", "b1", "W2", "b2", "s",
                                        "L", "d", "d_key", "C", "H")}
    for kind in M.KINDS + (LW.WORD,):
        for n in range(len(kind.letters)):
            names[str(kind.index(n))] = kind.index(n)
    names.update({"W": LW.n_words, "c": LW.c, "m": LW.m, "Sum": sp.Sum, "exp": sp.exp,
                  "QQ": LW.QQ})
    return sp.sympify(text, locals=names)


@pytest.mark.parametrize("text", IN_USE)
def test_expressions_in_use_read_as_sympify_read_them(text):
    model = MLP if any(x in text for x in ("W1", "W2", "b1", "b2")) else LINEAR
    names = G.namespace(model)
    expr = G.parse(text, names)
    assert expr == old_reading(text)
    assert G.parse(G.text(expr, names), names) == expr  # the canonical text reads back


def test_generic_candidates_read_as_sympify_read_them():
    from proofs.conjecture import GENERIC
    for _, text, classifier, _ in GENERIC:
        assert G.read(text, M.Model(classifier or "mlp")) == old_reading(text)


def test_decimals_are_exact():
    assert G.read("0.1*q[r] + 2.50*q[r]", LINEAR) == sp.Rational(13, 5) * M.q[M.r]
