"""Kernel boundaries the suite used to miss: a numeric step whose measured error
equals its tolerance holds ("error ≤ tolerance"), one just above fails."""

import math

import pytest
import sympy as sp

from proofs.kernel import Measured, Step, Theorem, check_theorem


def _numeric(error, tolerance):
    step = Step("n", "measured", "numeric", lambda sc: Measured(error, tolerance))
    return check_theorem(Theorem("toy", "toy", "a measured claim", (), (step,)))


@pytest.mark.parametrize("error, ok", [(1e-8, True), (math.nextafter(1e-8, 1.0), False),
                                       (0.0, True)])
def test_numeric_step_at_its_tolerance(error, ok):
    report = _numeric(error, 1e-8)
    assert report.ok is ok
    assert ("≤" if ok else ">") in report.steps[0].detail


# --- discover's declared laws, matched and checked exactly (proofs.discovered) ----------------

def _attention_setting(trainable=("classifier",), classes=2, loss="cross-entropy", tau=1):
    from fractions import Fraction

    from symbolic.discover import ModelSetting
    from symbolic.models.attention import multi_head
    return ModelSetting(multi_head(loss), trainable,
                        (("C", classes), ("d", 2), ("d_head", 1), ("heads", 1)), 1, 1,
                        (("tau", Fraction(tau)),))


def test_a_frozen_coordinate_enters_a_law_at_its_rational_value():
    """``U₀₀ · E₀₀`` with the embedding frozen at 2/3: the law over the trained coordinates
    is ``(2/3) U₀₀`` (the frozen value's numerator over its denominator)."""
    from fractions import Fraction

    from proofs.discovered import as_coefficients
    setting = _attention_setting()
    u, e = (setting.symbol(c) for c in (("classifier", (0, 0)), ("embeddings", (0, 0))))
    k = setting.coordinates.index(("classifier", (0, 0)))
    assert as_coefficients(u * e, setting, {("embeddings", (0, 0)): Fraction(2, 3)}) == {
        (k,): Fraction(2, 3)}


def _sample_needing(monkeypatch, restarts: int, built=None):
    """A sample whose field asks to be rebuilt ``restarts`` times (first with ``E = e^{1/3}``,
    then with 20, 21, … generators), then evaluates to 1; ``built`` receives each field's
    ``(denominator, generators)``."""
    import proofs.discovered as PD
    from proofs.exact import _Restart
    built = [] if built is None else built

    class Field:
        zero = 0

        def __init__(self, point, denominator, generators):
            built.append((denominator, generators))

        def K(self, x):
            return x

        def __call__(self, expr):
            if len(built) <= restarts:
                raise (_Restart(denominator=3) if len(built) == 1 else
                       _Restart(generators=18 + len(built)))
            return 1
    monkeypatch.setattr(PD, "_Field", Field)
    return PD._Sample({}, 1)


def test_a_sample_is_rebuilt_up_to_the_restart_limit_and_no_further(monkeypatch):
    """Twelve rebuilds (a finer ``E`` or more generators each) are allowed; a sample still
    asking after the twelfth fails with the limit named, never with a value."""
    from fractions import Fraction

    import sympy as sp

    from proofs.exact import ExactError
    built = []
    sample = _sample_needing(monkeypatch, 12, built)
    assert sample.rate({0: Fraction(1)}, {0: sp.Integer(1)}) == 1
    assert built[1] == (3, built[0][1]) and built[2:4] == [(3, 20), (3, 21)]
    with pytest.raises(ExactError, match="more than 12 restarts"):
        _sample_needing(monkeypatch, 13).rate({0: Fraction(1)}, {0: sp.Integer(1)})


def test_a_found_law_that_is_a_product_of_two_declared_linear_laws_is_explained(monkeypatch):
    """Σ_c U[c, k] holds for k = 0, 1 (classifier-sum): their product is explained by the
    declared laws (the span holds products of linear instances), not reported as new."""
    from fractions import Fraction
    from types import SimpleNamespace

    import proofs.discovered as PD
    import symbolic.discover as SD
    setting = _attention_setting()
    monkeypatch.setattr(PD, "exact_check", lambda law, setting, cache: (True, "stand-in"))
    monkeypatch.setattr(SD, "_residuals", lambda fields, inst: [0.0] * len(inst))
    monkeypatch.setattr(SD, "_functional_rank", lambda span, fields: len(span))
    index = setting.coordinates.index
    sums = [{(index(("classifier", (c, k))),): Fraction(1) for c in range(2)}
            for k in range(2)]
    (product,) = [p for p in SD.products(sums) if len(p) == 4]
    laws = sp.symbols("sum product")
    matched = PD.match(setting, SimpleNamespace(laws=laws, coefficients=[sums[0], product]),
                       {}, None)
    assert [x.name for x in matched.declared if x.holds] == ["attention-classifier-sum"]
    assert matched.explained == list(laws) and not matched.unexplained


def test_a_declared_law_of_mixed_degree_explains_itself_and_is_not_taken_for_linear(
        monkeypatch):
    """A declared ``U₀₀ + U₀₁²`` (linear and quadratic terms): the found law equal to it is
    explained, and it is not multiplied with itself as a linear law would be."""
    from fractions import Fraction
    from types import SimpleNamespace

    import proofs.discovered as PD
    import symbolic.discover as SD
    setting = _attention_setting()
    u, v = (setting.symbol(("classifier", (0, k))) for k in range(2))
    law = SimpleNamespace(name="mixed", quantity=u + v ** 2, trained=("classifier",),
                          frozen=(), components=())
    monkeypatch.setattr(PD, "declared_laws", lambda setting: ([law], "stand-in"))
    monkeypatch.setattr(PD, "_theorem", lambda law: "stand-in")
    monkeypatch.setattr(PD, "exact_check", lambda law, setting, cache: (True, "stand-in"))
    monkeypatch.setattr(SD, "_residuals", lambda fields, inst: [0.0] * len(inst))
    monkeypatch.setattr(SD, "_functional_rank", lambda span, fields: len(span))
    index = setting.coordinates.index
    mixed = {(index(("classifier", (0, 0))),): Fraction(1),
             (index(("classifier", (0, 1))),) * 2: Fraction(1)}
    found = sp.Symbol("found")
    matched = PD.match(setting, SimpleNamespace(laws=[found], coefficients=[mixed]), {}, None)
    assert matched.explained == [found] and matched.declared[0].holds


@pytest.mark.parametrize("name, where", [("paper", "symbolic/laws.py"),
                                         ("multi-head", "symbolic/laws_attention.py")])
def test_declared_laws_name_the_file_that_declares_them(name, where):
    """The paper's laws are declared in ``symbolic/laws.py``, the self-attention family's in
    ``symbolic/laws_attention.py``: the source line names the right file."""
    from types import SimpleNamespace

    from proofs.discovered import declared_laws
    laws, source = declared_laws(SimpleNamespace(model=SimpleNamespace(name=name,
                                                                       loss="cross-entropy")))
    assert source == f"declared in {where}"
    assert laws and all(law.family == name for law in laws)


def test_the_exact_checks_point_is_small_whole_numbers_of_either_sign_never_zero():
    """Every trained and frozen coordinate of the exact check's point is ±1, ±2 or ±3: never 0
    (a zero coordinate makes every product through it vanish, whatever the law), and over a
    few draws every magnitude and both signs occur."""
    from proofs.discovered import ExactRates
    setting = _attention_setting()
    trained, frozen = [], []
    for seed in range(1, 9):
        rates = ExactRates(setting, None, seed)
        ((_, _, (sample, *_)),) = rates.sentences
        params = [sample.point[setting.symbol(c)] for c in setting.coordinates]
        assert rates.point == params[:setting.n_trained]
        trained += params[:setting.n_trained]
        frozen += params[setting.n_trained:]
    for drawn in (trained, frozen):
        assert {abs(v) for v in drawn} == {1, 2, 3}
        assert {v > 0 for v in drawn} == {True, False}



def test_a_law_read_off_an_array_that_is_no_parameter_is_refused_by_name():
    from types import SimpleNamespace

    from proofs.discovered import instance
    law = SimpleNamespace(name="stray", quantity=sp.IndexedBase("Nope")[0])
    with pytest.raises(ValueError, match="law stray reads Nope, which is no parameter"):
        instance(law, _attention_setting(), {})


def test_a_declared_law_that_fails_its_exact_check_does_not_hold_even_if_verified(
        monkeypatch):
    """The exact check fails, the fresh points say 0: the law is NOT conserved (both must
    pass), and the status names where the exact check failed; the matching reports the time
    it took."""
    from types import SimpleNamespace

    import proofs.discovered as PD
    import symbolic.discover as SD
    monkeypatch.setattr(PD, "exact_check", lambda law, setting, cache: (False, "stand-in"))
    monkeypatch.setattr(SD, "_residuals", lambda fields, inst: [0.0] * len(inst))
    monkeypatch.setattr(SD, "_functional_rank", lambda span, fields: len(span))
    monkeypatch.setattr(PD, "time", SimpleNamespace(perf_counter=iter([100.0, 102.5]).__next__))
    matched = PD.match(_attention_setting(), SimpleNamespace(laws=[], coefficients=[]), {},
                       None)
    assert matched.seconds == 2.5
    (law,) = [x for x in matched.declared if x.name == "attention-classifier-sum"]
    assert not law.holds and law.instances == [] and matched.declared_rank == 0
    assert law.status == "NOT conserved: the exact check failed (stand-in)"


def test_the_exact_check_runs_with_every_size_capped_at_two():
    """Sizes, words and sentence length above ``CHECK_SIZE`` come down to it; smaller ones
    stay."""
    from fractions import Fraction

    from proofs.discovered import small
    from symbolic.discover import ModelSetting
    setting = _attention_setting()
    big = ModelSetting(setting.model, ("classifier",),
                       (("C", 3), ("d", 1), ("d_head", 5), ("heads", 2)), 4, 1,
                       (("tau", Fraction(1)),))
    check = small(big, setting.model)
    assert dict(check.sizes) == {"C": 2, "d": 1, "d_head": 2, "heads": 2}
    assert (check.words, check.max_len, check.trained) == (2, 1, ("classifier",))


def test_a_law_constant_on_the_checked_model_fails_its_exact_check():
    """head-query-key with only the classifier training: every component is constant on the
    explicit model, so nothing was checked and the check does not pass."""
    from proofs.discovered import exact_check
    from symbolic import laws as SL
    passed, where = exact_check(SL.law("head-query-key"), _attention_setting())
    assert not passed and "trained: classifier" in where


def test_a_declared_law_reading_no_trained_coordinate_is_constant_and_not_checked(
        monkeypatch):
    """A law over a frozen embedding entry only: reported constant here, not held, and never
    sent to the exact check."""
    from types import SimpleNamespace

    import proofs.discovered as PD
    setting = _attention_setting()
    law = SimpleNamespace(name="frozen", quantity=setting.symbol(("embeddings", (0, 0))),
                          trained=(), frozen=(), components=())
    monkeypatch.setattr(PD, "declared_laws", lambda setting: ([law], "stand-in"))
    monkeypatch.setattr(PD, "exact_check", lambda law, setting, cache: pytest.fail("checked"))
    matched = PD.match(setting, SimpleNamespace(laws=[], coefficients=[]), {}, None)
    ((name, status, holds),) = [(x.name, x.status, x.holds) for x in matched.declared]
    assert (name, status, holds) == ("frozen", "constant here (it reads no trained "
                                               "coordinate)", False)
    assert matched.declared_rank == 0


def test_a_declared_law_whose_exact_check_cannot_finish_does_not_hold(monkeypatch):
    """An exact check that gives up (ExactError) is a failed check, named as not checked."""
    from types import SimpleNamespace

    import proofs.discovered as PD
    import symbolic.discover as SD
    from proofs.exact import ExactError

    def gives_up(law, setting, cache):
        raise ExactError("too many restarts")
    monkeypatch.setattr(PD, "exact_check", gives_up)
    monkeypatch.setattr(SD, "_residuals", lambda fields, inst: [0.0] * len(inst))
    matched = PD.match(_attention_setting(), SimpleNamespace(laws=[], coefficients=[]), {},
                       None)
    (law,) = [x for x in matched.declared if x.name == "attention-classifier-sum"]
    assert not law.holds and law.exact == "not checked: too many restarts"
    assert law.status == "NOT conserved: the exact check failed (not checked: too many restarts)"
