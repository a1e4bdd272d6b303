"""pytest/nbval configuration shared by tests/ and notebooks/.

nbval runs every notebook cell (``--nbval-lax``) and compares only the cells marked
``# NBVAL_CHECK_OUTPUT``. Progress bars (stderr) and widget views differ from run to
run, so they are never compared.
"""
import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_collectstart(collector):
    if getattr(collector, "fspath", None) is not None and collector.fspath.ext == ".ipynb":
        collector.skip_compare += (
            "stderr",
            "text/html",
            "application/javascript",
            "application/vnd.jupyter.widget-view+json",
            "application/vnd.jupyter.widget-state+json",
        )
