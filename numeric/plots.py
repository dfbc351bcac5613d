"""Figures of the experiments, each written as PNG and PDF with labelled axes.

A figure that draws several series tells them apart by a legend or by labels written beside
the series themselves (the words of a SEN figure, whose colours are too many to match against
a legend). Figures are built with ``matplotlib.figure.Figure`` (no pyplot, so no GUI backend
and no global state); PNG files are rendered by the Agg backend, PDF files by matplotlib's
PDF backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from numeric.outputs import atomic_path

#: Points per word drawn on a SEN figure (the trace holds every epoch).
SEN_POINTS = 300
#: Words named on an SST SEN figure (those with the largest scores).
SST_NAMED = 10
#: The theory curve: thin and grey, drawn under the measured tracks.
THEORY = dict(color="0.55", lw=0.9, zorder=1)


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


def log_scale(ax, axis: str = "y") -> None:
    """Log-scale axis, decades labelled in plain text."""
    getattr(ax, f"set_{axis}scale")("log")
    side = getattr(ax, f"{axis}axis")
    side.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    side.set_minor_formatter(NullFormatter())


def label_ends(ax, points, *, column: float = 0.8, gap: float = 0.055) -> None:
    """Write each ``(x, y, text, colour)`` in a column at ``column`` (axes fraction), at the
    height of its point where the labels do not collide, joined to the point by a thin line.

    The axis limits must be final: label heights are computed from them.
    """
    y0, y1 = ax.get_ylim()
    order = sorted(points, key=lambda p: p[1])
    heights = [(y - y0) / (y1 - y0) for _, y, _, _ in order]
    for k in range(1, len(heights)):  # push up to keep labels apart ...
        heights[k] = max(heights[k], heights[k - 1] + gap)
    overflow = heights[-1] - 0.97 if heights else 0
    if overflow > 0:  # ... and the whole column down if it leaves the axes
        heights = [h - overflow for h in heights]
    for (x, y, text, colour), h in zip(order, heights):
        ax.annotate(text, xy=(x, y), xytext=(column, h), textcoords="axes fraction",
                    va="center", fontsize=8, color=colour,
                    arrowprops=dict(arrowstyle="-", lw=0.5, color=colour, shrinkA=1,
                                    shrinkB=2))


def sen_figure(scores, sen_norms, m, curve, distance, stem, *, title, from_epoch,
               tolerance, names=None) -> list[Path]:
    """Each topic word's ``(s_t, ‖q‖‖v_t‖)`` over training against the SEN curve, its last
    epoch marked and named (``names``, one per column; default "topic word j"); and the
    relative distance from the curve per epoch, log-log so the first epochs show."""
    epochs = np.arange(len(scores))
    keep = np.unique(np.linspace(0, len(scores) - 1, SEN_POINTS).astype(int))
    colours = [f"C{j % 10}" for j in range(scores.shape[1])]
    fig = Figure(layout="constrained", figsize=(11, 4.4))
    ax, bx = fig.subplots(1, 2)
    top = max(float(np.nanmax(scores)), 1e-3)
    grid = np.linspace(0.0, top * 1.05, 400)
    ax.plot(grid, curve(grid, m), **THEORY)
    for j, colour in enumerate(colours):
        ax.plot(scores[keep, j], sen_norms[keep, j], color=colour, lw=1.3, zorder=2)
        ax.plot(scores[-1, j], sen_norms[-1, j], "o", color=colour, ms=4, zorder=3)
    ax.set_xlim(-0.02 * top, top * 1.45)
    ax.set_ylim(0, max(float(np.nanmax(sen_norms)), float(curve(grid, m)[-1])) * 1.08)
    names = names or [f"topic word {j}" for j in range(scores.shape[1])]
    label_ends(ax, [(scores[-1, j], sen_norms[-1, j], names[j], colours[j])
                    for j in range(scores.shape[1])])
    ax.legend(handles=[
        Line2D([], [], **THEORY, label=r"theory $\sqrt{2(s + (e^{s}-1)/m)}$" + f", m = {m}"),
        Line2D([], [], color="0.2", lw=1.3, marker="o", markevery=[-1], ms=4,
               label="a topic word over training, ● its last epoch")],
        loc="upper left", fontsize=8)
    ax.set_xlabel(r"score $s_t = q\cdot\kappa_t$")
    ax.set_ylabel(r"$\|q\|\,\|v_t\|$")
    ax.set_title(f"{title}: topic words over training")
    # epochs spaced evenly on the log axis: every early epoch, a few hundred in all
    shown = np.unique(np.geomspace(1, max(len(scores) - 1, 1), SEN_POINTS).astype(int))
    dist = np.maximum(distance(scores[shown], sen_norms[shown], m), 1e-16)
    for j, colour in enumerate(colours):
        bx.plot(epochs[shown], dist[:, j], color=colour, lw=0.6, alpha=0.5)
    bx.plot(epochs[shown], dist.max(axis=1), color="k", lw=1.2,
            label="largest over the topic words")
    log_scale(bx, "x")
    log_y(bx)
    bx.axhline(tolerance, color="k", ls="--", lw=1, label=f"{tolerance:.0%} of the curve")
    bx.axvline(from_epoch, color="grey", ls=":", lw=1, label=f"epoch {from_epoch}")
    bx.set_xlabel("epoch")
    bx.set_ylabel("relative distance from the SEN curve")
    bx.set_title(f"{title}: distance from theory (thin: each topic word)")
    bx.legend(fontsize=8)
    return save(fig, stem)


def loss_figure(losses: dict, stem, *, title, extra: dict | None = None) -> list[Path]:
    """Loss per epoch (log scale), one line per entry of ``losses`` (label → values at every
    epoch, e.g. ``"train"``); ``extra`` maps labels to ``(epochs, values)`` measured at some
    epochs only (e.g. ``"validation"``)."""
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


def symlog_bins(values, linthresh: float, per_decade: int = 8) -> np.ndarray:
    """Bin edges evenly spaced on a symmetric log scale: logarithmic beyond ``linthresh`` on
    either side of 0, one bin across ``[-linthresh, linthresh]``."""
    top = max(float(np.max(np.abs(values))), linthresh) * 1.01
    decades = max(np.log10(top / linthresh), 1e-3)
    side = np.geomspace(linthresh, top, max(int(np.ceil(decades * per_decade)), 1) + 1)
    return np.concatenate([-side[::-1], side])


def distribution_figure(scores, norms, is_topic, stem, *, title) -> list[Path]:
    """Histograms of the final scores (symmetric log scale) and embedding norms (log scale),
    topic vs non-topic words: the non-topic words' spread shows beside the topic words'
    values, orders of magnitude larger."""
    fig = Figure(layout="constrained", figsize=(10, 4))
    axes = fig.subplots(1, 2)
    nonzero = np.abs(scores[scores != 0])
    # the linear band around 0 below the smallest score, so no bin mixes scales
    linthresh = 10 ** np.floor(np.log10(nonzero.min())) if nonzero.size else 1.0
    positive = norms[norms > 0]
    low = float(positive.min()) if positive.size else 1.0
    norm_bins = np.geomspace(low, max(float(norms.max()), low * 10), 60)
    for ax, values, bins, label in ((axes[0], scores, symlog_bins(scores, linthresh),
                                     r"score $s_w$ (symmetric log scale)"),
                                    (axes[1], np.maximum(norms, low), norm_bins,
                                     r"embedding norm $\|v_w\|$ (log scale)")):
        ax.hist(values[~is_topic], bins=bins, histtype="stepfilled", alpha=0.7,
                label=f"non-topic words ({int((~is_topic).sum())})")
        ax.hist(values[is_topic], bins=bins, histtype="stepfilled", alpha=0.9,
                label=f"topic words ({int(is_topic.sum())})")
        log_scale(ax)  # a handful of topic words next to thousands of others
        ax.set_ylim(bottom=0.7)  # a bin of one word stays visible
        ax.set_xlabel(label)
        ax.set_ylabel("number of words")
        ax.legend(loc="best")
    axes[0].set_xscale("symlog", linthresh=linthresh)
    axes[0].xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axes[0].tick_params(axis="x", labelrotation=35)
    # the bins are symmetric about 0; the axis spans the values, a factor 2 beyond each end
    axes[0].set_xlim(min(float(scores.min()) * 2, -linthresh), max(float(scores.max()) * 2,
                                                                   linthresh))
    log_scale(axes[1], "x")
    axes[1].set_xlim(low / 2, float(norms.max()) * 2)
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


def sst_sen_figure(scores, sen_norms, m, curve, stem, *, title, words=None) -> list[Path]:
    """The top words' ``(s_w, ‖q‖‖v_w‖)`` coloured by their ``m``, with SEN curves for the
    smallest, median and largest ``m`` and the ``SST_NAMED`` largest scores named (``words``:
    their text, in the order of ``scores``); and measured against predicted ``‖q‖‖v_w‖``."""
    fig = Figure(layout="constrained", figsize=(12, 4.6))
    ax, bx = fig.subplots(1, 2)
    points = ax.scatter(scores, sen_norms, c=m, s=12, cmap="viridis", zorder=2,
                        label="a top word")
    fig.colorbar(points, ax=ax, label="m (average length − 1)")
    top = max(float(np.max(scores)), 1e-3)
    grid = np.linspace(0.0, top * 1.05, 400)
    for q, style in ((0.0, ":"), (0.5, "-"), (1.0, "--")):
        mq = float(np.quantile(m, q))
        ax.plot(grid, curve(grid, mq), ls=style, **THEORY, label=f"theory, m = {mq:.1f}")
    ax.set_xlim(0, top * 1.5)
    ax.set_ylim(0, max(float(np.nanmax(sen_norms)), float(np.nanmax(curve(grid, m.min()))))
                * 1.08)
    if words is not None:
        named = np.argsort(-np.asarray(scores), kind="stable")[:SST_NAMED]
        label_ends(ax, [(scores[i], sen_norms[i], str(words[i]), "0.15") for i in named],
                   column=0.7, gap=0.05)
    ax.set_xlabel(r"score $s_w$")
    ax.set_ylabel(r"$\|q\|\,\|v_w\|$")
    ax.set_title(f"{title}: {len(scores)} words with the largest scores")
    ax.legend(fontsize=8, loc="upper left")
    predicted = curve(scores, m)
    bx.scatter(predicted, sen_norms, s=12, label="a top word")
    high = float(np.nanmax(np.concatenate([predicted, sen_norms])))
    bx.plot([0, high], [0, high], **THEORY, label="measured = theory")
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
