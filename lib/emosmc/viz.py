"""Figures used by the notebooks and the demo (matplotlib only)."""
from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from .data import to_uint8  # noqa: F401  (re-exported: notebooks import it from here)

__all__ = ["density_contours", "particles_scatter", "ess_plot", "distinct_ancestors", "family_ess", "ancestry_plot",
           "POTENTIAL_STYLE", "genealogy_plot", "offspring_bars", "image_grid", "counterfactual_grid", "to_uint8",
           "edit_figure", "pipeline_diagram"]


def density_contours(ax, log_density, lim=4.0, n=200, **kw):
    """Filled contours of ``exp(log_density(xy))`` on ``[-lim, lim]^2``."""
    g = torch.linspace(-lim, lim, n, dtype=torch.float64)
    X, Y = torch.meshgrid(g, g, indexing="xy")
    Z = log_density(torch.stack([X, Y], -1).reshape(-1, 2)).reshape(n, n).exp()
    ax.contourf(X.numpy(), Y.numpy(), Z.numpy(), levels=kw.pop("levels", 12), cmap=kw.pop("cmap", "Greys"), **kw)
    ax.set_aspect("equal")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    return ax


def particles_scatter(ax, x, weights=None, color="C0", size=8.0, **kw):
    """Particles ``(N, 2)``; marker area proportional to the normalised weight when given."""
    x = torch.as_tensor(x).detach().cpu().numpy()
    s = size if weights is None else size * len(x) * torch.as_tensor(weights).cpu().numpy()
    ax.scatter(x[:, 0], x[:, 1], s=s, c=color, alpha=kw.pop("alpha", 0.5), linewidths=0, **kw)
    return ax


def ess_plot(ax, result, row: int = 0, label: Optional[str] = None, **kw):
    """ESS / N at each reverse step, counted from 1 (the numbering of ``state.step + 1``): the value at step k
    is the ESS after step k's reweighting and before its resampling (the last one after the final weighting);
    a marker shows each step that resampled."""
    ess = result.ess_curve()[:, row].numpy()
    N = result.log_weights.shape[1]
    steps = np.arange(1, len(ess) + 1)
    (line,) = ax.plot(steps, ess / N, label=label, **kw)
    res = np.array([s.step for s in result.trace if s.resampled is not None and bool(s.resampled[row])], dtype=int)
    ax.plot(res + 1, ess[res] / N, "v", color=line.get_color(), ms=5)
    ax.set_xlabel("reverse step (from 1)")
    ax.set_ylabel("ESS / N")
    ax.set_ylim(0, 1.05)
    return ax


def distinct_ancestors(result) -> torch.Tensor:
    """``(K + 1, B)``: at each step k (0 = the starting particles, K = the end) the number of distinct
    particles of that step that have descendants among the final particles. It only grows with k; path
    degeneracy is how small it is at the start."""
    G = result.genealogy()  # (K + 1, B, N)
    S = G.sort(dim=-1).values
    return 1 + (S[..., 1:] != S[..., :-1]).sum(-1)


def family_ess(result, step: int) -> torch.Tensor:
    """``(B,)``: the ESS of the final weights summed per family, a family being the final particles that share
    their ancestor at ``step``. Copies made by resampling count once, so it compares like with like: without
    resampling it is the ordinary ESS, with resampling at most the number of distinct ancestors."""
    G = result.genealogy()[step]  # (B, N): ancestor at `step` of each final particle
    W = result.weights.to(torch.float64)
    fam = torch.zeros_like(W).scatter_add_(1, G.to(W.device), W)
    return 1.0 / (fam**2).sum(1)


def ancestry_plot(ax, result, label: Optional[str] = None, **kw):
    """Distinct ancestors of the final particles against the step (mean over the rows, with their range when
    there are several): readable at any N, unlike one line per particle."""
    D = distinct_ancestors(result).double()
    steps = np.arange(D.shape[0])
    (line,) = ax.plot(steps, D.mean(1).numpy(), label=label, **kw)
    if D.shape[1] > 1:
        ax.fill_between(steps, D.min(1).values.numpy(), D.max(1).values.numpy(), color=line.get_color(), alpha=0.15,
                        lw=0)
    ax.set_xlabel("reverse step (0 = the starting noise)")
    ax.set_ylabel("distinct ancestors")
    return ax


# One look per potential, distinct in colour, marker and line style (no line can hide another)
POTENTIAL_STYLE = {
    "paper": dict(color="C3", marker="s", ls="--"),
    "immediate": dict(color="C0", marker="o", ls="-"),
    "difference": dict(color="C1", marker="D", ls="-", lw=2.5),
    "max": dict(color="C2", marker="^", ls="-."),
    "sum": dict(color="C4", marker="v", ls=":", lw=2.0),
}


def genealogy_plot(ax, result, row: int = 0, max_lines: int = 200, color="C0"):
    """Ancestral lines of the final particles: particle index (y) against step (x). Lines that
    merge have a common ancestor; the number of distinct roots is in the title."""
    G = result.genealogy()[:, row, :].numpy()  # (K+1, N)
    K1, N = G.shape
    cols = np.linspace(0, N - 1, min(N, max_lines)).astype(int)
    for n in cols:
        ax.plot(np.arange(K1), G[:, n], color=color, lw=0.6, alpha=0.4)
    ax.set_xlabel("reverse step")
    ax.set_ylabel("ancestor index")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # particles are counted, not measured
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    roots = len(np.unique(G[0]))
    ax.set_title(f"{roots} of {N} starting particles {'has' if roots == 1 else 'have'} descendants")
    return ax


def offspring_bars(ax, W, counts: dict):
    """Expected offspring ``N W_i`` next to the counts each scheme gave."""
    W = torch.as_tensor(W).flatten().numpy()
    N = len(W)
    idx = np.arange(N)
    width = 0.8 / (len(counts) + 1)
    ax.bar(idx, N * W, width, color="k", alpha=0.3, label="N W_i (expected)")
    for j, (name, c) in enumerate(counts.items()):
        ax.bar(idx + (j + 1) * width, torch.as_tensor(c).flatten().numpy(), width, label=name)
    ax.set_xlabel("particle")
    ax.set_ylabel("children")
    ax.legend(fontsize=9)
    return ax


def image_grid(images, titles: Optional[Sequence[str]] = None, ncols: Optional[int] = None,
               row_labels: Optional[Sequence[str]] = None, scale: float = 1.3, fontsize: int = 7):
    """A figure of images: ``(B, H, W, 3)`` uint8 or ``(B, 3, H, W)`` tensors in ``[-1, 1]``."""
    if isinstance(images, torch.Tensor):
        images = to_uint8(images)
    B = len(images)
    ncols = ncols or B
    nrows = int(np.ceil(B / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows + 0.2 * (titles is not None)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < B:
            ax.imshow(images[i])
            if titles is not None:
                ax.set_title(titles[i], fontsize=fontsize)
    if row_labels:
        for r, lab in enumerate(row_labels):
            axes[r, 0].text(-0.1, 0.5, lab, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=fontsize)
    fig.tight_layout()
    return fig


def counterfactual_grid(edits, titles: Sequence[str], counterfactuals=None, cf_titles: Optional[Sequence[str]] = None,
                        references: Sequence = (), ncols: Optional[int] = None, scale: float = 2.2,
                        fontsize: float = 10, cf_label: str = "true\ncounterfactual"):
    """Edits large enough to read, each beside what it should have become.

    ``edits``: ``(B, 3, H, W)`` in ``[-1, 1]``, laid out ``ncols`` to a row, titled ``titles``. With
    ``counterfactuals`` (same shape: in the toy world ``render(identity, target)`` of each edit), every row of
    edits gets a row beneath it holding their counterfactuals (titled ``cf_titles``), labelled ``cf_label`` on
    the left. ``references`` -- ``(image (3, H, W), title)`` pairs such as the source face -- fill the first
    column, one per row of edits. Every face is ``scale`` inches wide, every title ``fontsize`` points."""
    edits = to_uint8(edits) if isinstance(edits, torch.Tensor) else np.asarray(edits)
    B = len(edits)
    if len(titles) != B:
        raise ValueError(f"{B} edits but {len(titles)} titles")
    cfs = None
    if counterfactuals is not None:
        cfs = to_uint8(counterfactuals) if isinstance(counterfactuals, torch.Tensor) else np.asarray(counterfactuals)
        if len(cfs) != B:
            raise ValueError(f"{B} edits but {len(cfs)} counterfactuals")
    cf_titles = list(cf_titles) if cf_titles is not None else [""] * B
    ncols = ncols or B
    bands = int(np.ceil(B / ncols))
    if len(references) > bands:
        raise ValueError(f"{len(references)} references for {bands} row(s) of edits: one per row at most")
    lead = 1 if references or cfs is not None else 0  # the first column: references and the row labels
    per_band = 2 if cfs is not None else 1

    def lines(ts):
        return max([1] + [str(t).count("\n") + 1 for t in ts if t])

    heights = []
    for b in range(bands):
        row = list(titles[b * ncols:(b + 1) * ncols]) + ([references[b][1]] if b < len(references) else [])
        heights.append(scale + lines(row) * fontsize * 1.45 / 72)
        if cfs is not None:
            heights.append(scale + lines(cf_titles[b * ncols:(b + 1) * ncols]) * fontsize * 1.45 / 72)
    fig, axes = plt.subplots(bands * per_band, ncols + lead, figsize=(scale * (ncols + lead) * 1.04, sum(heights)),
                             gridspec_kw=dict(height_ratios=heights), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(B):
        b, c = divmod(i, ncols)
        ax = axes[b * per_band, lead + c]
        ax.imshow(edits[i])
        ax.set_title(titles[i], fontsize=fontsize)
        if cfs is not None:
            ax = axes[b * per_band + 1, lead + c]
            ax.imshow(cfs[i])
            if cf_titles[i]:
                ax.set_title(cf_titles[i], fontsize=fontsize)
    for b, (image, title) in enumerate(references):
        ax = axes[b * per_band, 0]
        ax.imshow(to_uint8(image[None])[0] if isinstance(image, torch.Tensor) else np.asarray(image))
        ax.set_title(title, fontsize=fontsize)
    if cfs is not None:
        for b in range(bands):
            axes[b * per_band + 1, 0].text(0.95, 0.5, cf_label, transform=axes[b * per_band + 1, 0].transAxes,
                                           ha="right", va="center", fontsize=fontsize)
    fig.tight_layout()
    return fig


def edit_figure(source, best, particles, particle_probs, result, target: str, row: int = 0, best_prob=None,
                best_truth=None, particle_truths=None, counterfactual=None):
    """One steered edit at a glance: source and best result, every final particle with the
    classifier's target probability, the ESS over the steps, and the particles' genealogy. In the
    toy world ``best_truth`` / ``particle_truths`` (true expressions) are shown first, and
    ``counterfactual`` (``render(identity, target)``) beside the best result."""
    def mark(truth):
        return f"true: {truth} {'✓' if truth == target else '✗'}" if truth else ""

    N = len(particles)
    ncols = max(4, min(N, 8))
    prow = int(np.ceil(N / ncols))
    fig = plt.figure(figsize=(1.4 * ncols, 2.6 + 1.4 * prow + 2.2))
    gs = fig.add_gridspec(2 + prow, ncols, height_ratios=[2.2] + [1.2] * prow + [2.2])
    tops = [(source, "source"),
            (best, f"best particle -> {target}" + (f"\n{mark(best_truth)}," if best_truth else "")
             + (f"  classifier p={best_prob:.2f}" if best_prob is not None else ""))]
    if counterfactual is not None:
        tops.append((counterfactual, f"true counterfactual\nrender(identity, {target})"))
    edges = np.linspace(0, ncols, len(tops) + 1).round().astype(int)
    for (image, title), a, b in zip(tops, edges[:-1], edges[1:]):
        ax = fig.add_subplot(gs[0, a:b])
        ax.imshow(to_uint8(image[None])[0])
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    h = ncols // 2
    for i, im in enumerate(to_uint8(particles)):
        ax = fig.add_subplot(gs[1 + i // ncols, i % ncols])
        ax.imshow(im)
        head = f"{particle_truths[i]} {'✓' if particle_truths[i] == target else '✗'}\n" if particle_truths else ""
        ax.set_title(f"{head}p={float(particle_probs[i]):.2f}", fontsize=9)
        ax.axis("off")
    ess_plot(fig.add_subplot(gs[-1, :h]), result, row)
    genealogy_plot(fig.add_subplot(gs[-1, h:]), result, row)
    fig.axes[-1].title.set_fontsize(8)
    fig.tight_layout()
    return fig


def pipeline_diagram(scale: float = 1.0):
    """The editing pipeline as a figure: encode, noise to the strength, the SMC loop (UNet step,
    x0 prediction, reward, potential, weights, resampling), decode, pick the best particle."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    fig, ax = plt.subplots(figsize=(13.2 * scale, 4.4 * scale))
    ax.set_xlim(0, 13.1)
    ax.set_ylim(0, 4.4)
    ax.axis("off")

    def box(x, y, w, h, text, color):
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="0.3", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)
        return (x, y, w, h)

    def arrow(a, b, text="", bend=0.0):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, lw=1.1, color="0.25",
                                     connectionstyle=f"arc3,rad={bend}"))
        if text:
            ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2 + 0.12, text, ha="center", fontsize=7.5, color="0.25")

    data, model, smc = "#dbe9f6", "#fde9c9", "#e3f1dc"
    box(0.1, 1.9, 1.3, 0.8, "source photo\n256x256", data)
    box(1.8, 1.9, 1.4, 0.8, "VAE encoder\n(× scaling factor)", model)
    box(3.6, 1.9, 1.3, 0.8, "latent z0\n4x32x32", data)
    box(5.3, 1.9, 1.4, 0.8, "noised to the\nstrength: x_t,\nN copies", data)
    ax.add_patch(FancyBboxPatch((7.1, 0.2), 3.95, 3.95, boxstyle="round,pad=0.05", fc="none", ec="0.5", ls="--"))
    ax.text(9.07, 3.95, "SMC loop, once per reverse step", ha="center", fontsize=8.5, color="0.3")
    box(7.3, 2.95, 1.5, 0.7, "UNet: noise\nprediction", model)
    box(9.35, 2.95, 1.5, 0.7, "x0 prediction\n(or x_t itself)", data)
    box(9.35, 1.7, 1.5, 0.7, "reward r = log p(target)\ndecode + classifier", model)
    box(9.35, 0.45, 1.5, 0.7, "potential G(r)\n→ log-weights", smc)
    box(7.3, 0.45, 1.5, 0.7, "resample when\nthe ESS is low", smc)
    box(7.3, 1.7, 1.5, 0.7, "scheduler step\nx_t → x_t-1", smc)
    box(11.5, 1.9, 1.5, 0.8, "final particles:\ndecode, classify;\nthe best = the edit", data)
    arrow((1.4, 2.3), (1.8, 2.3))
    arrow((3.2, 2.3), (3.6, 2.3))
    arrow((4.9, 2.3), (5.3, 2.3))
    arrow((6.7, 2.3), (7.3, 3.3))
    arrow((8.8, 3.3), (9.35, 3.3))
    arrow((10.1, 2.95), (10.1, 2.4))
    arrow((10.1, 1.7), (10.1, 1.15))
    arrow((9.35, 0.8), (8.8, 0.8))
    arrow((8.05, 1.15), (8.05, 1.7))
    arrow((8.05, 2.4), (8.05, 2.95))
    ax.text(7.95, 2.67, "next\nstep", ha="right", va="center", fontsize=7.5, color="0.25")
    arrow((11.05, 2.3), (11.5, 2.3))
    ax.text(11.29, 2.55, "after the\nlast step", ha="center", fontsize=7, color="0.25")
    fig.tight_layout()
    return fig


def region_overlay(images: torch.Tensor, regions: torch.Tensor, tint=(1.0, 0.1, 0.6), alpha: float = 0.45) -> torch.Tensor:
    """``(B, 3, H, W)`` images in ``[-1, 1]`` with their ``(B, 1, H, W)`` region masks (:mod:`emosmc.regions`)
    tinted over them (where an edit may change), for :func:`image_grid`."""
    t = torch.tensor(tint, dtype=torch.float32).view(1, 3, 1, 1) * 2 - 1
    m = regions.float().clamp(0, 1) * alpha
    return images.float() * (1 - m) + t * m


def region_figure(images: torch.Tensor, regions: torch.Tensor, titles: Optional[Sequence[str]] = None,
                  ncols: int = 8, scale: float = 1.3):
    """A grid of images with their expression regions tinted (:func:`region_overlay`)."""
    return image_grid(region_overlay(images, regions), titles, ncols=ncols, scale=scale)
