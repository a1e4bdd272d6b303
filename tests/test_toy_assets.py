"""The bundled toy models load offline and behave: reference outputs, and steering that works."""
import json

import pytest
import torch

from emosmc.profiles import TOY_ASSETS, get_profile
from emosmc.toyfaces import EMOTIONS, render, sample_identity
from emosmc.training import images_to_tensor

from toy_reference import REF, compute

pytestmark = pytest.mark.skipif(not (TOY_ASSETS / "unet" / "config.json").exists(),
                                reason="toy assets not trained (python -m emosmc.toy train-assets)")


def test_assets_are_small_safetensors():
    files = [p for p in TOY_ASSETS.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 20 * 2**20
    for part in ("vae", "unet", "classifier", "judge"):
        assert (TOY_ASSETS / part / "config.json").exists()
        assert list((TOY_ASSETS / part).glob("*.safetensors")), part


def test_assets_reproduce_reference_outputs():
    ref, now = json.loads(REF.read_text()), compute()
    for k in ref:
        assert torch.allclose(torch.tensor(now[k]), torch.tensor(ref[k]), atol=1e-4), k


def test_classifier_and_judge_read_expressions_by_name():
    prof = get_profile("toy")
    clf, judge = prof.load("classifier"), prof.load("judge")
    ident = [sample_identity(10_000 + i) for i in range(4)]
    x = images_to_tensor(torch.stack([torch.from_numpy(render(i, e)) for i in ident for e in EMOTIONS]))
    y = torch.arange(7).repeat(4)
    with torch.no_grad():
        assert (clf(x).argmax(-1) == y).float().mean() >= 0.9
        assert (judge(x).argmax(-1) == y).float().mean() >= 0.9


def test_steering_raises_the_target_probability_over_unguided_img2img():
    """Reduced steering check: 4 counterfactuals, 8 particles. The guidance classifier's target
    probability of the SMC edit must clearly exceed that of unguided img2img at the same settings."""
    from emosmc.cli import TOY_EDIT
    from emosmc.pipeline import EmotionEditPipeline

    pipe = EmotionEditPipeline.from_profile("toy")
    ident = [sample_identity(20_000 + i) for i in range(2)]
    src = images_to_tensor(torch.stack([torch.from_numpy(render(i, "neutral")) for i in ident]))
    src = src.repeat_interleave(2, 0)
    targets = ["surprise", "sad", "surprise", "sad"]
    settings = dict(TOY_EDIT, num_particles=8)
    out = pipe(src, targets, generator=torch.Generator().manual_seed(0), progress=False, **settings)
    plain = pipe.img2img(src, settings["num_inference_steps"], settings["noise_strength"], 1,
                         generator=torch.Generator().manual_seed(0))[:, 0]
    idx = torch.tensor([EMOTIONS.index(t) for t in targets])
    with torch.no_grad():
        p_plain = pipe.classify(plain)[torch.arange(4), idx]
    p_smc = out.target_probs
    assert p_smc.mean() > 0.6 and p_smc.mean() - p_plain.mean() > 0.3, (p_smc, p_plain)
