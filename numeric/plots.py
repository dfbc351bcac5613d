"""Figures of the experiments, each written as PNG and PDF with labelled axes and legends.

Figures are built with ``matplotlib.figure.Figure`` (no pyplot, so no GUI backend and no global
state); PNG files are rendered by the Agg backend, PDF files by matplotlib's PDF backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from numeric.outputs import atomic_path

#: Points per word drawn on a SEN figure (the trace holds every epoch).
SEN_POINTS = 300


def save(fig: Figure, stem) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf``; return both paths."""
    stem = Path(stem)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    for path in paths:
        with atomic_path(path) as tmp:  # a half-written figure never replaces a whole one
            fig.savefig(tmp, dpi=150, format=path.suffix[1:])
        # laid out once, by the first file's drawing: the second keeps its positions (a
        # separate layout pass cost a whole extra drawing, a third of the figure's time)
        fig.set_layout_engine("none")
    return paths


def log_y(ax) -> None:
    """Log-scale y axis if the plotted values span more than a decade, else linear.

    Decades get plain-text labels (mathtext labels made each figure take seconds to lay
    out); within one decade a log axis would have no labelled tick, hence linear.
    """
    low, high = ax.dataLim.y0, ax.dataLim.y1
    if low > 0 and high / low > 10:
        log_scale(ax)


def log_scale(ax) -> None:
    """Log-scale y axis, decades labelled in plain text."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def sen_figure(scores, sen_norms, m, curve, distance, stem, *, title, from_epoch,
               tolerance) -> list[Path]:
    """Measured ``(s_t, ‖q‖‖v_t‖)`` of each topic word over training against the SEN curve,
    and the relative distance from the curve per epoch."""
    epochs = np.arange(len(scores))
    keep = np.unique(np.linspace(0, len(scores) - 1, SEN_POINTS).astype(int))
    fig = Figure(layout="constrained", figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    for j in range(scores.shape[1]):
        ax.scatter(scores[keep, j], sen_norms[keep, j], s=6, alpha=0.6,
                   label=f"topic word {j}")
    grid = np.linspace(0.0, max(float(np.nanmax(scores)), 1e-3) * 1.05, 400)
    ax.plot(grid, curve(grid, m), "k-", lw=1.2,
            label=r"theory $\sqrt{2(s + (e^{s}-1)/m)}$" + f", m = {m}")
    ax.set_xlabel(r"score $s_t = q\cdot\kappa_t$")
    ax.set_ylabel(r"$\|q\|\,\|v_t\|$")
    ax.set_title(f"{title}: topic words over training")
    ax.legend(fontsize=7, ncol=2)
    dist = distance(scores, sen_norms, m)
    for j in range(scores.shape[1]):
        bx.plot(epochs[1:], np.maximum(dist[1:, j], 1e-16), lw=0.8, label=f"topic word {j}")
    log_y(bx)
    bx.axhline(tolerance, color="k", ls="--", lw=1, label=f"{tolerance:.0%}")
    bx.axvline(from_epoch, color="grey", ls=":", lw=1, label=f"epoch {from_epoch}")
    bx.set_xlabel("epoch")
    bx.set_ylabel("relative distance from the SEN curve")
    bx.set_title(f"{title}: distance from theory")
    bx.legend(fontsize=7, ncol=2)
    return save(fig, stem)


def loss_figure(losses: dict, stem, *, title, extra: dict | None = None) -> list[Path]:
    """Training loss per epoch (log scale); ``extra`` maps labels to ``(epochs, values)``."""
    fig = Figure(layout="constrained", figsize=(5.5, 4))
    ax = fig.subplots()
    for label, loss in losses.items():
        ax.plot(np.arange(len(loss)), loss, label=label)
    for label, (x, y) in (extra or {}).items():
        ax.plot(x, y, "o-", ms=2, label=label)
    log_y(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy loss")
    ax.set_title(f"{title}: loss")
    ax.legend()
    return save(fig, stem)


def distribution_figure(scores, norms, is_topic, stem, *, title) -> list[Path]:
    """Histograms of the final scores and embedding norms, topic vs non-topic words."""
    fig = Figure(layout="constrained", figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, values, label in ((axes[0], scores, r"score $s_w$"),
                              (axes[1], norms, r"embedding norm $\|v_w\|$")):
        bins = np.linspace(values.min(), values.max(), 60) if np.ptp(values) > 0 else 10
        ax.hist(values[~is_topic], bins=bins, histtype="stepfilled", alpha=0.7,
                label="non-topic words")
        ax.hist(values[is_topic], bins=bins, histtype="stepfilled", alpha=0.9,
                label="topic words")
        log_scale(ax)  # a handful of topic words next to thousands of others
        ax.set_xlabel(label)
        ax.set_ylabel("number of words")
        ax.legend()
    fig.suptitle(f"{title}: distributions at the end of training")
    return save(fig, stem)


def ablation_figure(curves: dict, threshold, stem) -> list[Path]:
    """Rows: models; columns: loss, mean topic score, mean topic ‖v‖; all runs per panel."""
    models = list(dict.fromkeys(model for model, _ in curves))
    fig = Figure(layout="constrained", figsize=(13, 3.6 * len(models)))
    axes = fig.subplots(len(models), 3, sharex=True, sharey="col", squeeze=False)
    labels = {"loss": "training loss", "score": r"mean topic score $s_t$",
              "norm": r"mean topic norm $\|v_t\|$"}
    for (model, variant), c in curves.items():
        row = axes[models.index(model)]
        for ax, key in zip(row, labels):
            ax.plot(np.arange(len(c[key])), c[key], label=variant)
    for model, row in zip(models, axes):
        log_y(row[0])
        row[0].axhline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold}")
        for ax, label in zip(row, labels.values()):
            ax.set_title(f"{model}: {label}")
            ax.set_ylabel(label)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=8)
    return save(fig, stem)


def sst_sen_figure(scores, sen_norms, m, curve, stem, *, title) -> list[Path]:
    """The top words' ``(s_w, ‖q‖‖v_w‖)`` coloured by their ``m``, with SEN curves for the
    smallest, median and largest ``m``; and measured against predicted ``‖q‖‖v_w‖``."""
    fig = Figure(layout="constrained", figsize=(11, 4.2))
    ax, bx = fig.subplots(1, 2)
    points = ax.scatter(scores, sen_norms, c=m, s=12, cmap="viridis", label="top words")
    fig.colorbar(points, ax=ax, label="m (average length − 1)")
    grid = np.linspace(0.0, max(float(np.max(scores)), 1e-3) * 1.05, 400)
    for q, style in ((0.0, ":"), (0.5, "-"), (1.0, "--")):
        mq = float(np.quantile(m, q))
        ax.plot(grid, curve(grid, mq), "k" + style, lw=1, label=f"theory, m = {mq:.1f}")
    ax.set_xlabel(r"score $s_w$")
    ax.set_ylabel(r"$\|q\|\,\|v_w\|$")
    ax.set_title(f"{title}: {len(scores)} words with the largest scores")
    ax.legend(fontsize=8)
    predicted = curve(scores, m)
    bx.scatter(predicted, sen_norms, s=12, label="top words")
    top = float(np.nanmax(np.concatenate([predicted, sen_norms])))
    bx.plot([0, top], [0, top], "k-", lw=1, label="measured = theory")
    bx.set_xlabel(r"theory $\sqrt{2(s_w + (e^{s_w}-1)/m_w)}$")
    bx.set_ylabel(r"measured $\|q\|\,\|v_w\|$")
    bx.set_title(f"{title}: measured vs theory")
    bx.legend(fontsize=8)
    return save(fig, stem)


def purity_figure(epochs, purity, uniform, stem, *, title) -> list[Path]:
    """Label purity of the word attention picks, over training, against a uniform pick."""
    fig = Figure(layout="constrained", figsize=(5.5, 4))
    ax = fig.subplots()
    ax.plot(epochs, purity, "o-", ms=2, label="word attention picks")
    ax.axhline(uniform, color="k", ls="--", lw=1, label="uniformly random word")
    ax.set_xlabel("epoch")
    ax.set_ylabel("label purity (training sentences)")
    ax.set_title(f"{title}: purity of the attended word")
    ax.legend()
    return save(fig, stem)
