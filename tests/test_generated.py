"""The checked-in engine is exactly what the derivation prints, and it imports without SymPy."""

import subprocess
import sys

import pytest

from attnflow.cli import main
from symbolic.generate import GENERATED, check_generated, generated_sources

# Each derivation and printing of every generated file costs about a second of CPU: the
# tests share one (``sources``) and derive again only where that is what they check.


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return generated_sources()


def written(folder, sources, monkeypatch):
    """A copy of the generated files as the derivation prints them; the comparison of a
    folder with the derivation then reuses that print (what it reports is tested here)."""
    import symbolic.generate

    monkeypatch.setattr(symbolic.generate, "generated_sources", lambda: sources)
    for name, text in sources.items():
        (folder / name).write_text(text)
    return folder


def test_derive_check_command_passes():
    assert main(["derive", "--check"]) == 0


def test_stale_file_is_caught(tmp_path, sources, monkeypatch):
    """Negative control: one changed byte in a regenerated copy is reported with a diff; a
    __pycache__ folder is Python's own and passes."""
    path = written(tmp_path, sources, monkeypatch) / "linear.py"
    (tmp_path / "__pycache__").mkdir()
    path.write_text(path.read_text().replace("g_z = (P - Y)", "g_z = (Y - P)"))
    diffs = check_generated(tmp_path)
    assert len(diffs) == 1 and "-    g_z = (Y - P)" in diffs[0] and "+    g_z = (P - Y)" in diffs[0]


def test_a_module_python_would_import_instead_is_caught(tmp_path, sources, monkeypatch):
    """A package folder linear/ (or an extension linear.*.so) shadows linear.py on import:
    derive --check once compared only *.py files and said "in sync" while a sign-flipped
    shadow ran."""
    written(tmp_path, sources, monkeypatch)
    (tmp_path / "linear").mkdir()
    (tmp_path / "linear" / "__init__.py").write_text("")
    (tmp_path / "broken.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    diffs = check_generated(tmp_path)
    assert len(diffs) == 2 and all("could import it instead" in d for d in diffs)
    assert any(d.startswith(f"{tmp_path / 'linear'}:") for d in diffs)


def test_generation_is_deterministic_and_current(sources):
    """Derived twice, the same bytes; and the checked-in files are exactly those."""
    assert generated_sources() == sources
    assert {p.name: p.read_text() for p in GENERATED.glob("*.py")} == sources


def test_importing_numeric_does_not_load_sympy():
    code = "import sys, numeric; numeric.gradient; sys.exit('sympy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_printer_refuses_contractions_the_flat_layout_cannot_express():
    """Token-level operands are laid out over the flat tokens of the whole batch: meeting a
    sentence-level operand or a second token in one einsum would pair every token with every
    sentence, so the printer refuses rather than print wrong code; same-token products and
    shared parameters print."""
    import pytest

    from symbolic.derive import derive
    from symbolic.model import Model
    from symbolic.printer import Operand, PrinterConfig, _Printer

    printer = _Printer(derive(Model("linear")), PrinterConfig())
    a_i, g_j = Operand("a", "i", True), Operand("g_a", "j", True)
    for ops, out in (([a_i, Operand("h", "bk")], "ik"), ([a_i, g_j], "i"), ([a_i], "bi")):
        with pytest.raises(ValueError, match="no flat-layout printing rule"):
            printer.contract(ops, out)
    assert printer.contract([a_i, Operand("g_a", "i", True)], "i") == "a * g_a"
    assert printer.contract([a_i, Operand("query", "r")], "ir") == 'np.einsum("i,r->ir", a, query)'
