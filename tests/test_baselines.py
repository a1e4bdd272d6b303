"""The methods of the frontier: what each sets, at what cost."""
import pytest

from emosmc.baselines import METHODS, method_settings
from emosmc.profiles import edit_settings

BASE = {**edit_settings("toy"), "final_check": 4}


def test_every_method_spends_the_budget_except_the_control():
    for m in METHODS:
        s = method_settings(m, BASE, 16)
        assert s["num_particles"] == (1 if m == "unguided" else 16), m
        assert s["num_inference_steps"] == BASE["num_inference_steps"] and s["noise_strength"] == BASE["noise_strength"]


def test_what_each_method_is():
    best = method_settings("best-of-n", BASE, 8)
    assert best["ess_threshold"] == 0.0 and best["resample_interval"] > BASE["num_inference_steps"]  # never resamples
    gg, gs = method_settings("gradient-guidance", BASE, 8), method_settings("guided-smc", BASE, 8)
    assert gg["guidance_scale"] == 0 and gg["proposal_correction"] is False and gg["gradient_scale"] == BASE["guidance_scale"]
    assert gs["gradient_scale"] == gs["guidance_scale"] == BASE["guidance_scale"] and gs.get("proposal_correction", True)
    assert gs["potential"] == "difference"
    assert method_settings("smc-paper-pixel", BASE, 8)["scorer"] == "pixel"


def test_bad_method_or_budget_is_named():
    with pytest.raises(ValueError, match="best-of-n"):
        method_settings("best_of_n", BASE, 4)
    with pytest.raises(ValueError, match="budget"):
        method_settings("guided-smc", BASE, 0)
