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
