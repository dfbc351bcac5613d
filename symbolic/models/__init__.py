"""The catalogue of models, and a researcher's own model read from a file.

Each entry names a family of descriptions (``symbolic.description.Model``) that share their
parameters: the losses it is derived for, the sizes it fixes (``self-attention`` is
``multi-head`` with one head) and the module of ``numeric/_generated`` its engine is printed
into. ``--model NAME`` reads an entry; ``--model FILE.py`` reads the ``MODEL`` a Python file
builds with :mod:`symbolic.description` (the file is run: it is the researcher's own code).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from symbolic.description import Model


@dataclass(frozen=True)
class Entry:
    """A model of the catalogue: ``build(loss)`` gives its description for one loss."""

    name: str
    summary: str
    build: Callable[[str], Model]
    losses: tuple[str, ...]
    module: str | None = None
    fixed: Mapping[str, int] = field(default_factory=dict)

    def model(self, loss: str | None = None) -> Model:
        """The description for ``loss`` (default: the first of :attr:`losses`)."""
        loss = self.losses[0] if loss is None else loss
        if loss not in self.losses and loss != "abstract":
            raise ValueError(f"model {self.name!r} has no loss {loss!r}; expected one of "
                             f"{', '.join(self.losses)}")
        return self.build(loss)

    def printed(self) -> list[Model]:
        """The descriptions its generated module holds, one per loss."""
        return [self.build(loss) for loss in self.losses]


def _paper(loss: str) -> Model:
    from symbolic.models.paper import paper
    return paper("linear", "abstract" if loss == "abstract" else "cross_entropy")


def _multi_head(loss: str) -> Model:
    from symbolic.models.attention import multi_head
    return multi_head(loss)


CATALOGUE: dict[str, Entry] = {
    "paper": Entry(
        "paper", "the paper's attention classifier (Lu, Mao & Nayak 2021): one query, a key "
        "and an embedding per word, a linear or MLP classifier, cross-entropy", _paper,
        ("cross-entropy",)),
    "self-attention": Entry(
        "self-attention", "one self-attention head softmax(X Qᵀ K Xᵀ/τ) X Vᵀ O, mean-pooled, "
        "linear classifier; cross-entropy or squared error", _multi_head,
        ("cross-entropy", "squared-error"), "multi_head", {"heads": 1}),
    "multi-head": Entry(
        "multi-head", "H self-attention heads summed, mean-pooled, linear classifier; "
        "cross-entropy or squared error", _multi_head, ("cross-entropy", "squared-error"),
        "multi_head"),
}


def load(name_or_path: str) -> Entry:
    """The catalogue entry ``name_or_path``, or the ``MODEL`` of a Python file
    (ValueError names what is wrong)."""
    if name_or_path in CATALOGUE:
        return CATALOGUE[name_or_path]
    if not name_or_path.endswith(".py"):
        raise ValueError(f"unknown model {name_or_path!r}; the catalogue has "
                         f"{', '.join(CATALOGUE)} (or give a file FILE.py exposing MODEL)")
    return _from_file(Path(name_or_path))


def _from_file(path: Path) -> Entry:
    if not path.is_file():
        raise ValueError(f"model file {path} does not exist")
    spec = importlib.util.spec_from_file_location(f"attnflow_user_model_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the researcher's own code: any error is theirs to read
        raise ValueError(f"model file {path}: {type(err).__name__}: {err}") from None
    described = getattr(module, "MODEL", None)
    if not isinstance(described, Model):
        raise ValueError(f"model file {path} must define MODEL, a model built with "
                         f"symbolic.description.model(...); found {type(described).__name__}")
    if described.name in CATALOGUE:
        raise ValueError(f"model file {path}: the name {described.name!r} is taken by the "
                         f"catalogue; choose another")
    return Entry(described.name, described.title, lambda loss: described, (described.loss,))
