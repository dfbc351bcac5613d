"""Data sets of the paper's experiments: the synthetic topic task and SST-2/SST-5 text files.

Synthetic task (the paper's): each sentence holds one topic word, which decides the label, and
``m`` non-topic words drawn with replacement. SST files hold one sentence per line: the label,
a space, then the tokenised sentence.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass

import numpy as np

from numeric.model import PAD, Dataset, integer

#: Id of the unknown word in a vocabulary built from text (see ``load_sst``).
UNK, UNK_WORD = 0, "<unk>"

#: File names of the usual SST distribution, per task: (stem, number of classes).
SST_FILES = {"sst2": ("stsa.binary", 2), "sst5": ("stsa.fine", 5)}
SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Splits:
    """Training, validation and test sentences over one vocabulary (``words[i]`` names id i)."""

    train: Dataset
    valid: Dataset
    test: Dataset
    words: tuple[str, ...] | None = None


def synthetic_topic_data(seed: int = 0, *, n_classes: int = 4, topics_per_class: int = 2,
                         n_nontopic: int = 5000, m: int = 20, n_sentences: int = 5000,
                         n_train: int = 3999, n_valid: int = 50) -> Splits:
    """The synthetic topic data set of the paper; defaults are the paper's values.

    Word ids: topic words first (word ``t`` belongs to class ``t // topics_per_class``), then
    the non-topic words. A sentence's class is uniform, its topic word uniform within the
    class, its ``m`` non-topic words uniform with replacement, its positions shuffled. The
    first ``n_train`` sentences train, the next ``n_valid`` validate, the rest test (the
    paper's 80/1/19 % split of 5000 sentences: 3999, 50, 951).
    """
    for name, value, least in (("n_classes", n_classes, 2), ("topics_per_class",
                               topics_per_class, 1), ("n_nontopic", n_nontopic, 1), ("m", m, 0),
                               ("n_sentences", n_sentences, 3), ("n_train", n_train, 1),
                               ("n_valid", n_valid, 1)):
        integer(name, value, least)
    if n_sentences - n_train - n_valid < 1:
        raise ValueError(f"n_sentences = {n_sentences} leaves no test sentences after "
                         f"n_train = {n_train} and n_valid = {n_valid}")
    rng = np.random.default_rng(integer("seed", seed, 0))  # not True, [1, 2] or 1.5
    n_topic = n_classes * topics_per_class
    labels = rng.integers(n_classes, size=n_sentences)
    topic = labels * topics_per_class + rng.integers(topics_per_class, size=n_sentences)
    tokens = np.column_stack([topic, n_topic + rng.integers(n_nontopic, size=(n_sentences, m))])
    tokens = rng.permuted(tokens, axis=1)
    topic_class = np.concatenate([np.repeat(np.arange(n_classes), topics_per_class),
                                  np.full(n_nontopic, -1)])
    full = Dataset(tokens, labels, n_topic + n_nontopic, n_classes, topic_class)
    return Splits(full.subset(slice(0, n_train)),
                  full.subset(slice(n_train, n_train + n_valid)),
                  full.subset(slice(n_train + n_valid, None)))


def is_punctuation(token: str) -> bool:
    """Whether every character of ``token`` is Unicode punctuation (category P*): ``,`` ``--``."""
    return all(unicodedata.category(ch).startswith("P") for ch in token)


def read_sst_file(path, n_classes: int, *, keep_punctuation: bool = True
                  ) -> list[tuple[int, list[str]]]:
    """``(label, words)`` per line of an SST file; words are split on whitespace, case kept.

    The files are already tokenised (punctuation stands as separate tokens). Punctuation
    tokens are words like any other unless ``keep_punctuation`` is false, in which case tokens
    made only of punctuation characters are dropped. Empty lines, labels outside
    ``0..n_classes-1``, lines without a sentence and bytes that are not UTF-8 raise
    ``ValueError`` naming the file and line number.
    """
    rows = []
    with open(path, "rb") as f:
        lines = f.read().splitlines()  # \n, \r\n and old-Mac \r all end a line
    for number, raw in enumerate(lines, start=1):
        where = f"{path}, line {number}"
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise ValueError(f"{where}: not valid UTF-8 ({err.reason})") from None
        if not line:
            raise ValueError(f"{where}: empty line; expected 'label sentence'")
        label, *words = line.split()
        if not (label.isascii() and label.isdigit() and int(label) < n_classes):
            raise ValueError(f"{where}: unknown label {label!r}; expected an integer in "
                             f"0..{n_classes - 1} followed by a space and the sentence")
        if not keep_punctuation:
            words = [w for w in words if not is_punctuation(w)]
        if not words:
            raise ValueError(f"{where}: no sentence after the label {label!r}"
                             + ("" if keep_punctuation else " (once punctuation is dropped)"))
        rows.append((int(label), words))
    if not rows:
        raise ValueError(f"{path}: no sentences")
    return rows


def build_vocabulary(sentences) -> dict[str, int]:
    """Word → id for the words of ``sentences`` in order of first appearance; ``<unk>`` is 0."""
    vocab = {UNK_WORD: UNK}
    for words in sentences:
        for w in words:
            vocab.setdefault(w, len(vocab))
    return vocab


def encode(rows, vocab: dict[str, int], n_classes: int) -> Dataset:
    """Sentences as a ``(S, L_max)`` id array padded with ``-1``; unseen words become ``<unk>``."""
    length = max(len(words) for _, words in rows)
    tokens = np.full((len(rows), length), PAD, dtype=np.int64)
    for i, (_, words) in enumerate(rows):
        tokens[i, :len(words)] = [vocab.get(w, UNK) for w in words]
    labels = np.array([label for label, _ in rows], dtype=np.int64)
    return Dataset(tokens, labels, len(vocab), n_classes)


def load_sst(directory, task: str = "sst2", *, keep_punctuation: bool = True) -> Splits:
    """SST-2 or SST-5 from ``directory`` (files ``stsa.binary.*`` or ``stsa.fine.*``).

    The vocabulary is built from the training file. Words of the validation or test files
    that never occur in training map to ``<unk>`` (id 0): it occurs in no training sentence,
    so training never moves its key or embedding — it keeps score ``q·κ = 0`` and a
    negligible embedding and takes its share of attention like a neutral word, which keeps
    every sentence at its true length. Sentences are padded with ``-1`` (masked).
    """
    if task not in SST_FILES:
        raise ValueError(f"unknown SST task {task!r}; expected one of {sorted(SST_FILES)}")
    stem, n_classes = SST_FILES[task]
    paths = [os.path.join(directory, f"{stem}.{split}") for split in SPLITS]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"{task}: file(s) not found: {', '.join(missing)} (give the folder "
                         f"holding {stem}.train, {stem}.dev and {stem}.test)")
    rows = [read_sst_file(p, n_classes, keep_punctuation=keep_punctuation) for p in paths]
    vocab = build_vocabulary(words for _, words in rows[0])
    train, valid, test = (encode(r, vocab, n_classes) for r in rows)
    return Splits(train, valid, test, tuple(vocab))
