"""Figures that teach: the pipeline diagram draws every stage of the loop in the engine's order."""
import matplotlib

matplotlib.use("Agg")

from emosmc.viz import pipeline_diagram  # noqa: E402


def test_the_pipeline_diagram_names_every_stage():
    fig = pipeline_diagram()
    texts = " | ".join(t.get_text() for t in fig.axes[0].texts)
    order = ["VAE encoder", "UNet: noise", "x0 prediction", "reward r", "potential G(r)", "resample when",
             "scheduler step", "final particles"]
    assert [texts.index(s) for s in order] == sorted(texts.index(s) for s in order)


def test_the_counterfactual_grid_puts_each_edit_above_its_counterfactual_and_the_source_first():
    import torch

    from emosmc.viz import counterfactual_grid

    edits = torch.rand(6, 3, 8, 8) * 2 - 1
    cfs = -edits
    src = torch.zeros(3, 8, 8)
    fig = counterfactual_grid(edits, [f"→ e{i}\ntrue: e{i} ✓" for i in range(6)], cfs, [f"cf {i}" for i in range(6)],
                              references=[(src, "source"), (src, "source 2")], ncols=3, scale=2.0, fontsize=10)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 6 + 6 + 2  # edits, counterfactuals, one reference per row of edits
    assert all(ax.title.get_fontsize() >= 9 for ax in axes)
    where = {ax.title.get_text(): ax.get_subplotspec().get_geometry()[2] for ax in axes}  # flat grid index
    ncol = 4  # the references' column and three edits
    assert where["source"] == 0 and where["source 2"] == 2 * ncol  # one reference per band of two rows
    for i in range(6):
        band, col = divmod(i, 3)
        edit = where[f"→ e{i}\ntrue: e{i} ✓"]
        assert edit == band * 2 * ncol + 1 + col and where[f"cf {i}"] == edit + ncol  # the counterfactual beneath
    assert fig.get_size_inches()[0] >= 4 * 2.0  # faces are `scale` inches wide
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert labels.count("true\ncounterfactual") == 2


def test_the_counterfactual_grid_checks_its_inputs():
    import pytest
    import torch

    from emosmc.viz import counterfactual_grid

    x = torch.zeros(4, 3, 8, 8)
    with pytest.raises(ValueError, match="4 edits but 3 titles"):
        counterfactual_grid(x, ["a"] * 3)
    with pytest.raises(ValueError, match="counterfactuals"):
        counterfactual_grid(x, ["a"] * 4, counterfactuals=x[:2])
    with pytest.raises(ValueError, match="one per row"):
        counterfactual_grid(x, ["a"] * 4, references=[(x[0], "s")] * 2, ncols=4)
    fig = counterfactual_grid(x, ["a"] * 4, ncols=2)  # no references, no counterfactuals: just the edits
    assert sum(bool(ax.images) for ax in fig.axes) == 4


def test_the_edit_figure_shows_the_true_counterfactual_beside_the_best_particle():
    import torch

    from emosmc.viz import edit_figure

    class Result:  # what edit_figure reads of an SMCResult
        log_weights = torch.zeros(5, 1, 4)
        trace = []

        def ess_curve(self):
            return torch.full((5, 1), 4.0)

        def genealogy(self):
            return torch.arange(4).repeat(6, 1, 1)

    x = torch.zeros(3, 8, 8)
    fig = edit_figure(x, x, torch.zeros(4, 3, 8, 8), torch.ones(4), Result(), "happy", best_prob=0.9,
                      best_truth="happy", particle_truths=["happy"] * 4, counterfactual=x)
    titles = [ax.title.get_text() for ax in fig.axes]
    assert any(t.startswith("true counterfactual") for t in titles)
    assert min(ax.title.get_fontsize() for ax in fig.axes if ax.images) >= 9
