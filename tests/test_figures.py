"""Every figure of ``attnflow reproduce`` labels its axes and tells its series apart; drawn
here from small made-up results, without running an experiment."""

import numpy as np
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.patches import Polygon

from numeric import plots
from numeric.experiments import sen_curve, sen_distance


@pytest.fixture
def drawn(monkeypatch):
    """The figures the plotting functions build, instead of files."""
    figures = []
    monkeypatch.setattr(plots, "save", lambda fig, stem: figures.append(fig) or [])
    return figures


def series(ax) -> int:
    """Lines, scatters and histograms drawn with data (reference lines count too)."""
    lines = [x for x in ax.get_lines() if len(x.get_xdata()) > 0]
    return len(lines) + sum(isinstance(c, (PathCollection, PolyCollection))
                            for c in ax.collections) + sum(
        isinstance(p, Polygon) for p in ax.patches)


def check_axes(fig):
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
        if series(ax) > 1:
            assert ax.get_legend() is not None, f"{ax.get_title()}: several series, no legend"


def track(epochs=60, words=3):
    """Topic words moving along the SEN curve (m = 4) with a little noise."""
    s = np.linspace(0, 1, epochs)[:, None] * np.arange(1, words + 1)
    y = sen_curve(s, 4) * (1 + 1e-3 * np.random.default_rng(0).standard_normal(s.shape))
    return s, y


def test_sen_figure_names_each_word_at_its_end_and_shows_the_first_epochs(drawn):
    s, y = track()
    plots.sen_figure(s, y, 4, sen_curve, sen_distance, "x", title="T", from_epoch=5,
                     tolerance=0.02, names=["a", "b", "c"])
    (fig,) = drawn
    check_axes(fig)
    ax, bx = fig.axes
    assert [t.get_text() for t in ax.texts] == ["a", "b", "c"]   # sorted by end height
    theory = ax.get_lines()[0]
    assert theory.get_zorder() < min(x.get_zorder() for x in ax.get_lines()[1:])
    assert theory.get_linewidth() < ax.get_lines()[1].get_linewidth()
    assert bx.get_xscale() == "log" and bx.get_yscale() == "log"


def test_distributions_spread_non_topic_words_on_log_scales(drawn):
    rng = np.random.default_rng(1)
    scores = np.concatenate([-rng.uniform(1e-3, 1e-2, 500), [2.5, 3.0]])
    norms = np.concatenate([rng.uniform(1e-3, 4e-2, 500), [3.0, 3.5]])
    topic = np.arange(502) >= 500
    plots.distribution_figure(scores, norms, topic, "x", title="T")
    (fig,) = drawn
    check_axes(fig)
    score_ax, norm_ax = fig.axes
    assert score_ax.get_xscale() == "symlog" and norm_ax.get_xscale() == "log"
    for ax, values in ((score_ax, scores[~topic]), (norm_ax, norms[~topic])):
        # the non-topic words' spread takes a visible share of the axis (on a linear axis
        # the topic words would squeeze it into one bin at 0)
        (x0, _), (x1, _) = ax.transData.transform([(values.min(), 1), (values.max(), 1)])
        assert (x1 - x0) / ax.bbox.width > 0.1


def test_loss_curves_say_train_and_validation(drawn):
    plots.loss_figure({"train": np.geomspace(1, 1e-2, 50)}, "x", title="T",
                      extra={"validation": ([0, 10, 20], [1.0, 0.5, 0.4])})
    (fig,) = drawn
    check_axes(fig)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["train",
                                                                           "validation"]


def test_sst_sen_figure_names_the_words_with_the_largest_scores(drawn):
    rng = np.random.default_rng(2)
    s = rng.uniform(0, 3, 40)
    y = sen_curve(s, 10.0) * rng.uniform(0.9, 1.2, 40)
    words = [f"word{i}" for i in range(40)]
    plots.sst_sen_figure(s, y, rng.uniform(5, 20, 40), sen_curve, "x", title="T", words=words)
    (fig,) = drawn
    check_axes(fig)
    named = {t.get_text() for t in fig.axes[0].texts}
    assert named == {words[i] for i in np.argsort(-s)[:plots.SST_NAMED]}


def test_ablation_and_purity_figures_label_every_panel(drawn):
    curve = {"loss": np.geomspace(1, 1e-2, 30), "score": np.linspace(0, 2, 30),
             "norm": np.linspace(0, 1, 30)}
    plots.ablation_figure({("FC", "both"): curve, ("FC", "keys frozen"): curve,
                           ("TC", "both"): curve}, 0.1, "x")
    plots.purity_figure([0, 10, 20], [0.6, 0.7, 0.75], 0.6, "x", title="T")
    for fig in drawn:
        check_axes(fig)
    assert len(drawn[0].axes) == 6


def test_the_synthetic_experiment_labels_the_loss_as_training_and_names_the_topic_words(
        drawn, tmp_path):
    from numeric import experiments
    from numeric.data import synthetic_topic_data

    data = synthetic_topic_data(0, n_classes=2, topics_per_class=1, n_nontopic=20, m=3,
                                n_sentences=30, n_train=20, n_valid=5)
    experiments.synthetic_model("Attn-FC", data, 3, 0, tmp_path, progress=False)
    sen, loss, _ = drawn
    assert [t.get_text() for t in loss.axes[0].get_legend().get_texts()] == ["train"]
    assert sorted(t.get_text() for t in sen.axes[0].texts) == ["word 0 (class 0)",
                                                               "word 1 (class 1)"]
