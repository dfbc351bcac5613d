"""The synthetic topic data set and the SST reader (numeric.data)."""


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numeric.data import UNK, load_sst, read_sst_file, synthetic_topic_data


def check_topic_structure(data, m):
    """Every sentence: one topic word whose class is the label, and m non-topic words."""
    cls = data.topic_class[data.tokens]
    is_topic = cls >= 0
    assert (is_topic.sum(axis=1) == 1).all()
    assert (cls[is_topic] == data.labels).all()
    assert ((~is_topic).sum(axis=1) == m).all()


def test_synthetic_defaults_are_the_papers():
    d = synthetic_topic_data()
    assert (len(d.train), len(d.valid), len(d.test)) == (3999, 50, 951)
    assert d.train.n_words == 4 * 2 + 5000 and d.train.n_classes == 4
    assert d.train.tokens.shape[1] == 21
    assert (d.train.topic_class[:8] == [0, 0, 1, 1, 2, 2, 3, 3]).all()
    assert (d.train.topic_class[8:] == -1).all()
    for part in (d.train, d.valid, d.test):
        check_topic_structure(part, 20)
    # classes are uniform: each holds a quarter of the training sentences, give or take
    counts = np.bincount(d.train.labels, minlength=4)
    assert np.all(np.abs(counts - 1000) < 120)


def test_synthetic_same_seed_same_data_other_seed_differs():
    a, b, c = (synthetic_topic_data(seed, n_sentences=300, n_train=200, n_valid=10)
               for seed in (3, 3, 4))
    assert np.array_equal(a.train.tokens, b.train.tokens)
    assert np.array_equal(a.test.labels, b.test.labels)
    assert not np.array_equal(a.train.tokens, c.train.tokens)


@given(n_classes=st.integers(2, 5), per_class=st.integers(1, 3), n_nontopic=st.integers(1, 40),
       m=st.integers(0, 25), n_train=st.integers(1, 30), n_valid=st.integers(1, 5),
       n_test=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_synthetic_knobs(n_classes, per_class, n_nontopic, m, n_train, n_valid, n_test, seed):
    d = synthetic_topic_data(seed, n_classes=n_classes, topics_per_class=per_class,
                             n_nontopic=n_nontopic, m=m, n_train=n_train, n_valid=n_valid,
                             n_sentences=n_train + n_valid + n_test)
    assert (len(d.train), len(d.valid), len(d.test)) == (n_train, n_valid, n_test)
    assert d.train.n_words == n_classes * per_class + n_nontopic
    for part in (d.train, d.valid, d.test):
        check_topic_structure(part, m)


@pytest.mark.parametrize("knobs, message", [
    (dict(n_classes=1), "n_classes"), (dict(m=-1), "m must"), (dict(topics_per_class=0),
                                                               "topics_per_class"),
    (dict(n_sentences=100, n_train=90, n_valid=10), "no test sentences"),
    (dict(n_nontopic=2.5), "n_nontopic"),
    # the seed was handed to NumPy unchecked: True and [1, 2] were accepted
    (dict(seed=True), "seed"), (dict(seed=[1, 2]), "seed"), (dict(seed=-1), "seed"),
])
def test_synthetic_bad_knobs(knobs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_topic_data(**knobs)


def write_sst(folder, stem="stsa.binary", train="", dev="1 good\n", test="0 bad\n"):
    for split, text in (("train", train), ("dev", dev), ("test", test)):
        (folder / f"{stem}.{split}").write_text(text, encoding="utf-8")
    return folder


def test_sst_reader_vocabulary_padding_and_unknown_words(tmp_path):
    write_sst(tmp_path, train="1 a fine , fine film .\n0 a dull film\n",
              dev="1 a splendid film !\n", test="0 dull\n")
    d = load_sst(tmp_path, "sst2")
    assert d.words == ("<unk>", "a", "fine", ",", "film", ".", "dull")
    assert d.train.tokens.tolist() == [[1, 2, 3, 2, 4, 5], [1, 6, 4, -1, -1, -1]]
    assert d.train.labels.tolist() == [1, 0]
    assert d.train.lengths.tolist() == [6, 3]
    # words never seen in training ("splendid", "!") map to <unk>
    assert d.valid.tokens.tolist() == [[1, UNK, 4, UNK]]
    assert d.test.tokens.tolist() == [[6]]
    assert d.train.n_words == d.test.n_words == 7


def test_sst_reader_punctuation_can_be_dropped(tmp_path):
    path = tmp_path / "f"
    path.write_text("1 well -- , it works ... ! '\n", encoding="utf-8")
    assert read_sst_file(path, 2)[0][1] == ["well", "--", ",", "it", "works", "...", "!", "'"]
    assert read_sst_file(path, 2, keep_punctuation=False)[0][1] == ["well", "it", "works"]
    path.write_text("1 well\n0 , .\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 2: no sentence .*punctuation"):
        read_sst_file(path, 2, keep_punctuation=False)


@pytest.mark.parametrize("text, n_classes, message", [
    ("1 good\n\n0 bad\n", 2, r"line 2: empty line"),
    ("1 good\n0 bad\n2 odd\n", 2, r"line 3: unknown label '2'"),
    ("4 fine\n5 odd\n", 5, r"line 2: unknown label '5'"),
    ("pos good\n", 2, r"line 1: unknown label 'pos'"),
    ("-1 bad\n", 2, r"line 1: unknown label '-1'"),
    ("1 good\n0\n", 2, r"line 2: no sentence"),
    ("1 good\n   \n", 2, r"line 2: empty line"),
    ("", 2, r"no sentences"),
])
def test_sst_reader_reports_bad_lines(tmp_path, text, n_classes, message):
    path = tmp_path / "f"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_sst_file(path, n_classes)


def test_sst_reader_reports_bad_bytes_and_missing_files(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"1 good\n0 caf\xe9\n")
    with pytest.raises(ValueError, match=r"line 2: not valid UTF-8"):
        read_sst_file(path, 2)
    with pytest.raises(ValueError, match=r"stsa\.fine\.train"):
        load_sst(tmp_path, "sst5")
    with pytest.raises(ValueError, match="unknown SST task"):
        load_sst(tmp_path, "sst3")


@pytest.mark.parametrize("task, sizes, n_classes", [("sst2", (6920, 872, 1821), 2),
                                                     ("sst5", (8544, 1101, 2210), 5)])
def test_sst_real_files(task, sizes, n_classes, sst_dir):
    d = load_sst(sst_dir, task)
    assert (len(d.train), len(d.valid), len(d.test)) == sizes
    assert d.train.n_classes == n_classes
    assert set(np.unique(d.train.labels)) == set(range(n_classes))
    # every training word is in the vocabulary; <unk> appears only outside training
    assert not (d.train.tokens == UNK).any()
    assert (d.test.tokens == UNK).any()
