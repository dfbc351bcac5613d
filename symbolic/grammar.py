"""The syntax of a candidate quantity: text read into a SymPy expression, nothing evaluated.

A tokenizer and a recursive-descent parser build the expression from whitelisted
constructors only: the arrays of a model (``V[w,k]``, each index a letter of the array's
axis kind), index letters, sizes, named constants, numbers as exact rationals,
``Sum(f, (k,0,d-1))`` over an index's full range, ``exp``, ``log``, ``+ − * / ^`` (or
``**``) and parentheses::

    expression := term (("+" | "-") term)*
    term       := factor (("*" | "/") factor)*
    factor     := ("+" | "-") factor | power
    power      := atom (("^" | "**") factor)?
    atom       := number | name | array "[" letter ("," letter)* "]" | "(" expression ")"
                | ("exp" | "log") "(" expression ")"
                | "Sum" "(" expression ("," "(" letter "," expression "," expression ")")+ ")"

The names come from :func:`namespace` of the model (its parameters, its word-level nodes,
their index kinds and sizes), never from Python. Anything else — a call, an attribute, a
string, a keyword, a comparison, an unknown name, a value that is undefined or infinite —
is a :class:`GrammarError` (a ValueError) of one line: what was found, its column, what is
allowed. The text, its tokens, its nesting, its numbers, its exponents and the number of
terms it expands to are bounded, so no input makes the reading, or the work after it, hang.
"""

from __future__ import annotations

import keyword
from dataclasses import dataclass
from math import comb

import sympy as sp
from sympy.printing.str import StrPrinter

from symbolic import laws as SL
from symbolic import model as M
from symbolic.indexform import kind_of

#: Bounds of a candidate: characters, tokens, nesting (parentheses, calls, signs, powers),
#: decimal digits of any number it holds, the size of an integer exponent, and the terms
#: it has once products of sums and powers are multiplied out.
MAX_LENGTH = 2000
MAX_TOKENS = 400
MAX_DEPTH = 32
MAX_DIGITS = 30
MAX_EXPONENT = 8
MAX_TERMS = 64

FUNCTIONS = ("Sum", "exp", "log")
SYNTAX = ("allowed: the model's arrays with index letters (V[w,k]), index letters, sizes, "
          "constants, numbers (2, 0.5), + - * / ^ (or **), parentheses, Sum(f, (k,0,d-1)), "
          "exp(f), log(f)")


class GrammarError(ValueError):
    """A candidate that is not in the syntax: one line naming what was found, where, and
    what is allowed."""


# --- the names a candidate may use ------------------------------------------------------------

@dataclass(frozen=True)
class Array:
    """An array a candidate reads: ``kinds`` the index kind of each axis (the word kind
    where the model gathers the array per token)."""

    name: str
    base: sp.IndexedBase
    kinds: tuple
    meaning: str


@dataclass(frozen=True)
class Namespace:
    """Every name the syntax knows: arrays, index letters, sizes, constants (with what each
    means)."""

    arrays: dict
    indices: dict
    sizes: dict
    constants: dict
    meanings: dict

    def symbol(self, name: str):
        for table in (self.constants, self.sizes, self.indices):
            if name in table:
                return table[name]
        return None

    def name_of(self, symbol) -> str | None:
        for table in (self.constants, self.sizes, self.indices):
            for name, sym in table.items():
                if sym == symbol:
                    return name
        return None

    def letters(self, kind) -> list[str]:
        return [n for n, x in self.indices.items() if kind_of(x) is kind]

    def example(self, array: Array) -> str:
        """``array`` written with the first letter of each axis, ``V[w,k]``."""
        return f"{array.name}[{','.join(self.letters(k)[0] for k in array.kinds)}]"

    def describe(self) -> str:
        kinds = []
        for x in self.indices.values():
            if kind_of(x) not in kinds:
                kinds.append(kind_of(x))
        letters = "; ".join(f"{', '.join(self.letters(k))} ({k.name})" for k in kinds)
        return (f"arrays {', '.join(self.example(a) for a in self.arrays.values())}; "
                f"index letters {letters}; sizes {', '.join(self.sizes)}; constants "
                f"{', '.join(self.constants)}; functions {', '.join(FUNCTIONS)}")


#: Named constants a law may read, the parameter each needs in the model (None: none) and
#: what it means.
CONSTANTS = (
    ("QQ", SL.QQ, M.q, "‖q‖² = Σ_r q[r]², the squared norm of the query"),
    ("c", SL.c, None, "the common non-topic score (defined under A2)"),
    ("m", SL.m, None, "the number of non-topic words per sentence (defined under A3)"),
)


def namespace(model: M.Model) -> Namespace:
    """The names a candidate over ``model`` may use, read from the model: its parameters and
    word-level nodes (a per-token axis read at a word), the letters of their index kinds,
    the sizes of those kinds and of the model's own indices, and the named constants. A
    constant's name wins over an index letter it shares (``c``: the constant, not a class)."""
    arrays = {}
    for prm in model.params:
        kinds = tuple(SL.WORD if prm.per_token and n == 0 else kind_of(x)
                      for n, x in enumerate(prm.indices))
        arrays[str(prm.base)] = Array(str(prm.base), prm.base, kinds, prm.meaning)
    for base, node in SL.word_nodes(model).items():
        kinds = (SL.WORD,) + tuple(kind_of(x) for x in node.indices[1:])
        arrays[str(base)] = Array(str(base), base, kinds, f"{node.meaning} of a word")
    bases = {prm.base for prm in model.params}
    constants = {n: sym for n, sym, needs, _ in CONSTANTS if needs is None or needs in bases}
    meanings = {n: what for n, _, _, what in CONSTANTS if n in constants}
    kinds = []
    for x in [k for a in arrays.values() for k in a.kinds] + [
            kind_of(i) for prm in model.params for i in prm.indices]:
        if x not in kinds:
            kinds.append(x)
    sizes = {str(k.size): k.size for k in kinds}
    taken = set(arrays) | set(sizes) | set(constants) | set(FUNCTIONS)
    clash = (set(arrays) & (set(sizes) | set(constants) | set(FUNCTIONS))) | (
        set(sizes) & (set(constants) | set(FUNCTIONS)))
    if clash:
        raise ValueError(f"the model's names {sorted(clash)} are used twice")
    indices = {}
    for kind in kinds:
        if kind in {k for a in arrays.values() for k in a.kinds}:
            for n, letter in enumerate(kind.letters):
                if letter not in taken:
                    indices[letter] = kind.index(n)
    return Namespace(arrays, indices, sizes, constants, meanings)


# --- tokens -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "end", "bad"
    text: str
    column: int  # 1-based
    why: str = ""  # for "bad": what the character is and why it is refused


_OPERATORS = ("**", "+", "-", "*", "/", "^", "(", ")", "[", "]", ",")
_BAD = {
    "'": "a string: quotes are not part of the syntax",
    '"': "a string: quotes are not part of the syntax",
    ".": "attribute access: a dot only appears in a decimal such as 0.5",
    "=": "a comparison or an equation: write the quantity Q itself (its constancy is what "
         "is proved)",
    "<": "a comparison: write the quantity Q itself",
    ">": "a comparison: write the quantity Q itself",
    "!": "a comparison: write the quantity Q itself",
    ":": "Python syntax (a lambda, slice or mapping), which a candidate is not",
    "{": "a set or mapping, which a candidate is not",
    "}": "a set or mapping, which a candidate is not",
    "#": "a comment, which a candidate has none of",
    "\\": "a backslash, which a candidate has none of",
    "%": "an operator the syntax does not have",
    "@": "an operator the syntax does not have",
    "&": "an operator the syntax does not have",
    "|": "an operator the syntax does not have",
    "~": "an operator the syntax does not have",
    ";": "a statement separator, which a candidate has none of",
}


def _show(ch: str) -> str:
    """A character as it can be quoted on one line of a terminal."""
    if ch.isascii() and ch.isprintable():
        return repr(ch)
    return f"U+{ord(ch):04X}"


def tokens(text: str) -> list[Token]:
    """The tokens of ``text``, ending in an ``end`` token, or in a ``bad`` one at the first
    character the syntax does not have (reported when the parser reaches it, so problems
    come in reading order)."""
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t":
            i += 1
        elif ch.isascii() and ch.isdigit():
            j = i
            while j < n and text[j].isascii() and text[j].isdigit():
                j += 1
            if j < n and text[j] == "." and j + 1 < n and text[j + 1].isascii() \
                    and text[j + 1].isdigit():
                j += 1
                while j < n and text[j].isascii() and text[j].isdigit():
                    j += 1
            if j < n and text[j] in "eE" and j + 1 < n and (text[j + 1] in "+-"
                                                           or text[j + 1].isdigit()):
                out.append(Token("bad", text[i:j + 1], i + 1, "exponent notation: write "
                                 "the number as a plain decimal (0.001) or a fraction "
                                 "(1/1000)"))
                return out
            if j < n and text[j] == "_":
                out.append(Token("bad", text[i:j + 1], i + 1, "a digit separator: write the "
                                 "number with plain digits"))
                return out
            if j < n and text[j] == ".":
                decimal = "." in text[i:j]
                out.append(Token("bad", "." if decimal else text[i:j + 1],
                                 j + 1 if decimal else i + 1, _BAD["."] if decimal else
                                 "a decimal needs digits on both sides of the point (0.5)"))
                return out
            out.append(Token("number", text[i:j], i + 1))
            i = j
        elif (ch.isascii() and ch.isalpha()) or ch == "_":
            j = i
            while j < n and text[j].isascii() and (text[j].isalnum() or text[j] == "_"):
                j += 1
            if keyword.iskeyword(text[i:j]):
                out.append(Token("bad", text[i:j], i + 1, "Python syntax, which a candidate "
                                 "is not"))
                return out
            out.append(Token("name", text[i:j], i + 1))
            i = j
        else:
            op = next((o for o in _OPERATORS if text.startswith(o, i)), None)
            if op is None:
                why = _BAD.get(ch, "a character the syntax does not have")
                if not ch.isascii():
                    why = "a non-ASCII character: the syntax is ASCII"
                elif not ch.isprintable():
                    why = "a control character"
                out.append(Token("bad", ch, i + 1, why))
                return out
            if op == "/" and text.startswith("//", i):
                out.append(Token("bad", "//", i + 1, "floor division, an operator the "
                                 "syntax does not have"))
                return out
            out.append(Token("op", op, i + 1))
            i += len(op)
        if len(out) > MAX_TOKENS:
            raise GrammarError(f"the candidate has more than {MAX_TOKENS} tokens (names, "
                               f"numbers, operators); at most {MAX_TOKENS} are read")
    out.append(Token("end", "", n + 1))
    return out


# --- the parser --------------------------------------------------------------------------------

def parse(text, names: Namespace) -> sp.Expr:
    """The SymPy expression ``text`` writes over ``names``; GrammarError (one line) on
    anything outside the syntax or its bounds."""
    if not isinstance(text, str):
        raise GrammarError(f"a candidate is text, got {type(text).__name__}")
    if not text.strip():
        raise GrammarError("the candidate is empty; " + SYNTAX)
    if len(text) > MAX_LENGTH:
        raise GrammarError(f"the candidate has {len(text)} characters; at most {MAX_LENGTH} "
                           "are read")
    expr = _Parser(tokens(text), names).read()
    terms = expanded_terms(expr)
    if terms > MAX_TERMS:
        raise GrammarError(f"the candidate multiplies out to {terms} terms; at most "
                           f"{MAX_TERMS} (products of sums and their powers count each "
                           "product of terms)")
    return expr


def read(text, model: M.Model) -> sp.Expr:
    """``parse(text, namespace(model))``."""
    return parse(text, namespace(model))


class _Parser:
    def __init__(self, toks: list[Token], names: Namespace):
        self.toks, self.at, self.names, self.depth = toks, 0, names, 0

    # --- tokens
    def peek(self) -> Token:
        return self.toks[self.at]

    def take(self) -> Token:
        tok = self.toks[self.at]
        if tok.kind == "bad":
            raise GrammarError(f"{_quote(tok.text)} at column {tok.column}: {tok.why}; "
                               f"{SYNTAX}")
        self.at += 1
        return tok

    def is_op(self, *ops) -> bool:
        tok = self.peek()
        return tok.kind == "op" and tok.text in ops

    def expect(self, op: str, what: str) -> Token:
        tok = self.peek()
        if tok.kind == "op" and tok.text == op:
            return self.take()
        if tok.kind == "bad":
            self.take()
        raise GrammarError(f"{_found(tok)} where {what} was expected; {SYNTAX}")

    def deeper(self, tok: Token):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise GrammarError(f"nesting deeper than {MAX_DEPTH} levels at column "
                               f"{tok.column} (parentheses, calls, signs and powers count)")

    # --- grammar
    def read(self) -> sp.Expr:
        expr = self.expression()
        tok = self.peek()
        if tok.kind == "end":
            return expr
        if tok.kind == "bad":
            self.take()
        if tok.kind in ("name", "number") or (tok.kind == "op" and tok.text in "(["):
            raise GrammarError(f"missing operator before {_found(tok)} (write * for a "
                               f"product); {SYNTAX}")
        if tok.text == ")":
            raise GrammarError(f"unbalanced ')' at column {tok.column}; {SYNTAX}")
        if tok.text == ",":
            raise GrammarError(f"',' at column {tok.column}: a tuple or list is not a "
                               "quantity; commas only separate indices (V[w,k]) and the "
                               f"parts of Sum(f, (k,0,d-1)); {SYNTAX}")
        raise GrammarError(f"{_found(tok)} was not expected; {SYNTAX}")

    def expression(self) -> sp.Expr:
        expr = self.term()
        while self.is_op("+", "-"):
            op = self.take()
            right = self.term()
            expr = _built(expr + right if op.text == "+" else expr - right, op)
        return expr

    def term(self) -> sp.Expr:
        expr = self.factor()
        while self.is_op("*", "/"):
            op = self.take()
            right = self.factor()
            if op.text == "/" and right == 0:
                raise GrammarError(f"division by zero at column {op.column}: the value is "
                                   "undefined")
            expr = _built(expr * right if op.text == "*" else expr / right, op)
        return expr

    def factor(self) -> sp.Expr:
        if self.is_op("+", "-"):
            op = self.take()
            self.deeper(op)
            inner = self.factor()
            self.depth -= 1
            return inner if op.text == "+" else _built(-inner, op)
        return self.power()

    def power(self) -> sp.Expr:
        base = self.atom()
        if not self.is_op("^", "**"):
            return base
        op = self.take()
        self.deeper(op)
        exponent = self.factor()
        self.depth -= 1
        if not (exponent.is_Integer and abs(int(exponent)) <= MAX_EXPONENT):
            shown = _number_text(exponent) if exponent.is_Number else "not a number"
            raise GrammarError(f"exponent at column {op.column} is {shown}: an exponent is "
                               f"an integer from -{MAX_EXPONENT} to {MAX_EXPONENT} (use "
                               "exp(f) for e^f)")
        if base == 0 and exponent < 0:
            raise GrammarError(f"0 to a negative power at column {op.column}: the value is "
                               "undefined")
        return _built(base ** exponent, op)

    def atom(self) -> sp.Expr:
        tok = self.take()
        if tok.kind == "number":
            return _number(tok)
        if tok.kind == "name":
            return self.named(tok)
        if tok.kind == "op" and tok.text == "(":
            self.deeper(tok)
            expr = self.expression()
            self.close(tok)
            self.depth -= 1
            return expr
        if tok.kind == "op" and tok.text == "[":
            raise GrammarError(f"'[' at column {tok.column}: a list is not a quantity; "
                               f"brackets only follow an array (V[w,k]); {SYNTAX}")
        if tok.kind == "end":
            raise GrammarError(f"the candidate ends where a number, a name or '(' was "
                               f"expected; {SYNTAX}")
        raise GrammarError(f"{_found(tok)} where a number, a name or '(' was expected; "
                           f"{SYNTAX}")

    def close(self, opening: Token):
        tok = self.peek()
        if tok.kind == "op" and tok.text == ")":
            self.take()
            return
        if tok.kind == "op" and tok.text == ",":
            raise GrammarError(f"',' at column {tok.column}: a tuple or argument list is not "
                               "part of the syntax (only Sum takes several parts); "
                               f"{SYNTAX}")
        if tok.kind == "end":
            raise GrammarError(f"'(' at column {opening.column} is never closed; {SYNTAX}")
        self.expect(")", f"')' closing the '(' at column {opening.column}")

    def named(self, tok: Token) -> sp.Expr:
        name, names = tok.text, self.names
        if self.peek().kind == "bad" and self.peek().text == ".":
            self.take()  # attribute access: reported as such
        if self.is_op("("):
            if name == "Sum":
                return self.total(tok)
            if name in ("exp", "log"):
                return self.function(tok)
            if name in names.arrays:
                raise GrammarError(f"{name}( at column {tok.column}: {name} is an array; "
                                   f"index it with brackets, {names.example(names.arrays[name])}")
            raise GrammarError(f"{name}(…) at column {tok.column}: a call, and the only "
                               f"functions are {', '.join(FUNCTIONS)}; {SYNTAX}")
        if self.is_op("["):
            if name in names.arrays:
                return self.indexed(tok, names.arrays[name])
            arrays = ", ".join(names.example(a) for a in names.arrays.values())
            raise GrammarError(f"{name}[…] at column {tok.column}: only the model's arrays "
                               f"take indices ({arrays})")
        symbol = names.symbol(name)
        if symbol is not None:
            return symbol
        if name in names.arrays:
            array = names.arrays[name]
            raise GrammarError(f"{name} at column {tok.column} is an array with "
                               f"{len(array.kinds)} "
                               f"ind{'ex' if len(array.kinds) == 1 else 'ices'}: write "
                               f"{self.names.example(array)}")
        if name in FUNCTIONS:
            raise GrammarError(f"{name} at column {tok.column} is a function: write "
                               f"{name}(…)")
        raise GrammarError(f"unknown symbol {name} at column {tok.column}; the names are: "
                           f"{names.describe()}")

    def indexed(self, tok: Token, array: Array) -> sp.Expr:
        self.take()  # "["
        letters = []
        while True:
            letters.append(self.letter(array, len(letters)))
            if self.is_op(","):
                self.take()
                continue
            self.expect("]", f"',' or ']' in the indices of {array.name}")
            break
        if len(letters) != len(array.kinds):
            raise GrammarError(f"{array.name} at column {tok.column} takes "
                               f"{len(array.kinds)} ind{'ex' if len(array.kinds) == 1 else 'ices'} "
                               f"({', '.join(k.name for k in array.kinds)}), got "
                               f"{len(letters)}: write {self.names.example(array)}")
        return array.base[tuple(letters)]

    def letter(self, array: Array, axis: int):
        """An index of ``array`` at ``axis``: a letter of that axis's kind."""
        tok = self.take()
        kinds = array.kinds
        want = kinds[axis] if axis < len(kinds) else None
        allowed = (f"{want.name} indices are {', '.join(self.names.letters(want))}"
                   if want is not None else f"{array.name} has {len(kinds)} axes")
        if tok.kind == "number":
            raise GrammarError(f"{array.name}[…{tok.text}…] at column {tok.column}: a fixed "
                               f"entry; indices are letters, and a free index makes the law "
                               f"hold for every entry ({self.names.example(array)}); {allowed}")
        if tok.kind != "name":
            raise GrammarError(f"{_found(tok)} in the indices of {array.name}: indices are "
                               f"letters ({self.names.example(array)}); {allowed}")
        symbol = self.names.indices.get(tok.text)
        if symbol is None:
            what = ("a constant" if tok.text in self.names.constants else
                    "a size" if tok.text in self.names.sizes else "not an index letter")
            raise GrammarError(f"{tok.text} at column {tok.column} in {array.name}[…] is "
                               f"{what}; {allowed}")
        if want is not None and kind_of(symbol) is not want:
            raise GrammarError(f"{tok.text} at column {tok.column} is {_a(kind_of(symbol).name)} "
                               f"index, but axis {axis + 1} of {array.name} is "
                               f"{_a(want.name)} axis ({self.names.example(array)}); "
                               f"{allowed}")
        return symbol

    def function(self, tok: Token) -> sp.Expr:
        opening = self.take()  # "("
        self.deeper(opening)
        arg = self.expression()
        self.close(opening)
        self.depth -= 1
        if tok.text == "log" and arg.is_Number and arg <= 0:
            raise GrammarError(f"log({arg}) at column {tok.column}: the value is "
                               f"{'undefined' if arg == 0 else 'not real'}")
        return _built(sp.exp(arg) if tok.text == "exp" else sp.log(arg), tok)

    def total(self, tok: Token) -> sp.Expr:
        opening = self.take()  # "("
        self.deeper(opening)
        body = self.expression()
        limits = []
        while self.is_op(","):
            self.take()
            limits.append(self.limit())
        if not limits:
            self.expect(",", "',' and the range (k,0,d-1) of the sum")
        self.close(opening)
        self.depth -= 1
        seen = [x[0] for x in limits]
        if len(set(seen)) != len(seen):
            raise GrammarError(f"Sum at column {tok.column} runs over an index twice")
        return _built(sp.Sum(body, *limits), tok)

    def limit(self) -> tuple:
        opening = self.expect("(", "a range (k,0,d-1)")
        idx_tok = self.take()
        symbol = self.names.indices.get(idx_tok.text) if idx_tok.kind == "name" else None
        if symbol is None:
            raise GrammarError(f"{_found(idx_tok)}: a sum runs over an index letter, "
                               f"{', '.join(self.names.indices)}")
        kind = kind_of(symbol)
        self.expect(",", "',' after the index of the range")
        low = self.expression()
        self.expect(",", "',' after the lower end of the range")
        high = self.expression()
        self.close(opening)
        if low != 0 or sp.expand(high - kind.size + 1) != 0:
            size = self.names.name_of(kind.size) or str(kind.size)
            raise GrammarError(f"the range at column {opening.column} must be the full range "
                               f"of {idx_tok.text} ({kind.name}): ({idx_tok.text},0,"
                               f"{size}-1)")
        return (symbol, low, high)


def _number(tok: Token) -> sp.Rational:
    whole, _, frac = tok.text.partition(".")
    if len(whole.lstrip("0")) + len(frac) > MAX_DIGITS:
        raise GrammarError(f"the number at column {tok.column} has more than {MAX_DIGITS} "
                           "digits")
    return sp.Rational(int(whole + frac), 10 ** len(frac))


_UNDEFINED = (sp.S.ComplexInfinity, sp.S.Infinity, sp.S.NegativeInfinity, sp.S.NaN)
_ALLOWED = (sp.Add, sp.Mul, sp.Pow, sp.Rational, sp.Symbol, sp.Indexed, sp.IndexedBase,
            sp.Sum, sp.Tuple, sp.exp, sp.log, sp.core.numbers.Exp1)


def _built(expr, tok: Token) -> sp.Expr:
    """``expr`` just built at ``tok``, checked: finite and real, numbers and exponents
    within their bounds (SymPy folds numbers and merges powers as it builds)."""
    if expr.has(*_UNDEFINED):
        raise GrammarError(f"the value at column {tok.column} is undefined or infinite "
                           f"({expr}); a candidate is a finite quantity")
    if expr.has(sp.I):
        raise GrammarError(f"the value at column {tok.column} is not real ({expr}); a "
                           "candidate is a real quantity")
    for x in sp.preorder_traversal(expr):
        if not isinstance(x, _ALLOWED):
            raise GrammarError(f"the value at column {tok.column} is {x}, which is not a "
                               "real quantity of the syntax")
        if isinstance(x, sp.Rational) and max(len(str(abs(x.p))), len(str(x.q))) > MAX_DIGITS:
            raise GrammarError(f"a number at column {tok.column} has more than {MAX_DIGITS} "
                               "digits")
        if isinstance(x, sp.Pow) and not (x.exp.is_Integer and abs(int(x.exp)) <= MAX_EXPONENT):
            raise GrammarError(f"the power at column {tok.column} has the exponent "
                               f"{_number_text(x.exp)}; exponents are integers from "
                               f"-{MAX_EXPONENT} to {MAX_EXPONENT}")
    return expr


def _a(word: str) -> str:
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _number_text(x) -> str:
    text = str(x)
    return text if len(text) <= 40 else f"{text[:20]}… ({len(text)} characters)"


def _quote(text: str) -> str:
    if len(text) == 1:
        return _show(text)
    return repr(text) if text.isascii() and text.isprintable() else _show(text[0])


def _found(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the candidate"
    return f"{_quote(tok.text)} at column {tok.column}"


def expanded_terms(expr) -> int:
    """How many terms ``expr`` has once products of sums and positive powers of sums are
    multiplied out (an upper bound): what the canonical index form will hold."""
    if isinstance(expr, sp.Add):
        return sum(expanded_terms(x) for x in expr.args)
    if isinstance(expr, sp.Mul):
        out = 1
        for x in expr.args:
            out *= expanded_terms(x)
        return out
    if isinstance(expr, sp.Pow) and expr.exp.is_Integer and expr.exp > 0:
        n = expanded_terms(expr.base)
        return comb(n + int(expr.exp) - 1, int(expr.exp))
    if isinstance(expr, sp.Sum):
        return expanded_terms(expr.function)
    return 1


# --- the canonical text ------------------------------------------------------------------------

class _Printer(StrPrinter):
    """``sstr`` in the syntax: named constants by their names, indices without spaces,
    ``exp(1)`` for e."""

    def __init__(self, names: Namespace):
        super().__init__({"order": None})
        self.names = names

    def _print_Symbol(self, expr):
        return self.names.name_of(expr) or super()._print_Symbol(expr)

    def _print(self, expr, **kwargs):
        if isinstance(expr, sp.Indexed):  # before Indexed's own _sympystr, which adds spaces
            return f"{expr.base}[{','.join(self._print(i) for i in expr.indices)}]"
        return super()._print(expr, **kwargs)

    def _print_Exp1(self, expr):
        return "exp(1)"


def text(expr, names: Namespace) -> str:
    """``expr`` written in the syntax (``parse`` of it gives ``expr`` back): what a report
    prints and a rerun command carries, never the text the user typed."""
    return _Printer(names).doprint(expr)
