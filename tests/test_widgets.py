"""The explorer's callback, tested directly (ipywidgets would swallow its exceptions)."""
import datetime
import io

import numpy as np
import pytest
import torch
from PIL import Image

from emosmc.data import ImageLoadError
from emosmc.pipeline import EmotionEditPipeline
from emosmc.edit_config import EditConfig
from emosmc.profiles import get_profile
from emosmc.widgets import explore, explorer, image_from_upload


@pytest.fixture(scope="module")
def gallery():
    return get_profile("toy").gallery(3)


def test_explore_steers_and_returns_what_the_explorer_shows(pipe, gallery):
    x = gallery["toy face 0 (angry)"]
    kw = dict(num_particles=6, num_inference_steps=40, noise_strength=0.8, reward_on="x0", resampling="systematic")
    # steering, over 3 seeds (at these small settings about 1 draw in 4 misses): the returned face is one the
    # classifier likes far more than an unsteered particle; 32 reverse steps, the latent scorer
    guided = [explore(pipe, x, "happy", guidance_scale=20.0, scorer="latent", final_check=3, seed=s, **kw)
              for s in range(3)]
    plain = explore(pipe, x, "happy", guidance_scale=0.0, scorer="latent", final_check=3, seed=0, **kw)
    lift = torch.tensor([g.target_prob for g in guided]) - plain.particle_probs.mean()
    assert lift.mean() > 0.3, lift
    fast = guided[0]
    assert fast.particles.shape == (6, 3, 64, 64) and fast.particle_probs.shape == (6,)
    assert fast.output.nfe["decode"] == 3
    # the pixel scorer decodes every particle at every step and returns the classifier's favourite
    guided = explore(pipe, x, "happy", guidance_scale=20.0, seed=0, **kw)
    assert guided.output.nfe["decode"] == 6 * 32 + 1
    assert guided.target_prob == pytest.approx(float(guided.particle_probs.max()), abs=1e-4)
    again = explore(pipe, x, "happy", guidance_scale=20.0, seed=0, **kw)
    assert torch.equal(again.output.images, guided.output.images)


@pytest.mark.parametrize("kw,match", [
    (dict(target="joyful"), "joyful"),
    (dict(potential="best"), "unknown potential"),
    (dict(resampling="wheel"), "unknown resampling"),
    (dict(noise_strength=0.0), "noise_strength"),
    (dict(scorer="vision"), "unknown scorer"),
])
def test_explore_rejects_bad_settings_by_name(pipe, gallery, kw, match):
    args = dict(target="happy", num_particles=2, num_inference_steps=10)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        explore(pipe, gallery["toy face 1 (disgust)"], **args)


def test_toy_edits_carry_their_ground_truth(pipe, gallery):
    from emosmc.ground_truth import true_expression

    name = "toy face 0 (angry)"
    ident = gallery.identities[name]
    r = explore(pipe, gallery[name], "surprise", num_particles=4, num_inference_steps=20, noise_strength=0.5,
                guidance_scale=10.0, reward_on="x0", resampling="systematic", seed=2, identity=ident)
    assert r.truth == true_expression(r.output.images.cpu(), [ident]).names[0]
    assert r.particle_truths == true_expression(r.particles, [ident] * 4).names
    assert r.same_person is not None
    assert r.verdict.startswith(f"true: {r.truth} {'✓' if r.truth == 'surprise' else '✗'} · same person "
                                f"{'✓' if r.same_person else '✗'}, classifier p(surprise) =")
    unknown = explore(pipe, gallery[name], "surprise", num_particles=2, num_inference_steps=10)
    assert unknown.truth is None and unknown.verdict.startswith("classifier p(surprise)")


def test_uploads_go_through_the_file_checks():
    buf = io.BytesIO()
    Image.fromarray(np.full((80, 100), 100, np.uint8)).save(buf, format="PNG")
    notes = []
    with pytest.warns(UserWarning, match="me.png: converted L"):
        x = image_from_upload(buf.getvalue(), "me.png", 64, notes)
    assert x.shape == (3, 64, 64) and any("centre-cropped 100x80" in n for n in notes)
    with pytest.raises(ImageLoadError, match="notes.txt"):
        image_from_upload(b"hello", "notes.txt", 64)


def test_the_run_button_shows_results_and_errors_instead_of_swallowing_them(pipe, gallery):
    ui = explorer(pipe, gallery, EditConfig().replace(num_particles=2, num_inference_steps=10))
    c = ui.controls
    c["face"].value, c["target"].value, c["potential"].value = "toy face 2 (fear)", "sad", "difference"
    ui.run()
    assert "toy face 2 (fear) -> sad: true: " in ui.status.value and "classifier p(sad) =" in ui.status.value
    assert ui.status.value.index("true:") < ui.status.value.index("classifier")  # the ground truth first
    assert ui.last["result"].particles.shape[0] == 2 and len(ui.last["figure"].axes) == 6
    assert c["scorer"].options == ("pixel", "latent") and c["scorer"].value == "pixel"
    c["scorer"].value = "latent"
    ui.run()
    assert ui.last["result"].output.nfe["decode"] == 2  # the fast path decodes only its final check
    c["upload"].value = ({"name": "holiday.txt", "type": "text/plain", "size": 5, "last_modified": datetime.datetime(2026, 1, 1),
                          "content": memoryview(b"hello")},)
    ui.run()
    assert "ImageLoadError" in ui.status.value and "holiday.txt" in ui.status.value
    assert ui.last["result"] is None


def test_a_potential_added_to_the_registry_is_a_choice_everywhere(pipe, gallery, monkeypatch, tmp_path):
    """Registered once in emosmc.potentials.POTENTIALS: SMCConfig, the CLI and the explorer offer it, and it steers."""
    from emosmc import cli
    from emosmc.potentials import POTENTIALS, Potential
    from emosmc.smc import SMCConfig

    monkeypatch.setitem(POTENTIALS, "halved", Potential(lambda lam, r, past: 0.5 * lam * r))
    assert SMCConfig(potential="halved").potential == "halved"
    seen = {}
    monkeypatch.setattr(cli, "edit", lambda *a, **kw: seen.update(kw))
    cli.main(["edit", "face.png", "--target", "sad", "--profile", "toy", "--potential", "halved"])
    assert seen["potential"] == "halved"
    ui = explorer(pipe, gallery, EditConfig().replace(num_particles=2, num_inference_steps=10))
    assert "halved" in ui.controls["potential"].options
    ui.controls["potential"].value = "halved"
    ui.run()
    assert ui.last["result"] is not None and ui.last["result"].output.smc.trace[-1].rewards is not None


def test_steering_defaults_are_declared_once(pipe, gallery):
    """Every default is EditConfig's (SMCConfig's for the steering); the pipeline, explore() and the explorer
    take an EditConfig and restate none; the CLI and the notebooks start from a profile's preset."""
    import inspect

    names = set(EditConfig.names())
    for fn in (EmotionEditPipeline.__call__, explore, explorer):
        assert not names & set(inspect.signature(fn).parameters), fn.__name__
    shown = ("num_particles", "num_inference_steps", "noise_strength", "guidance_scale", "resample_interval",
             "potential", "resampling", "scorer", "region", "gradient_scale")
    default, toy = EditConfig(), get_profile("toy").edit
    for config, c in ((default, explorer(pipe, gallery).controls), (toy, explorer(pipe, gallery, toy, seed=5).controls)):
        assert {k: c[k].value for k in shown} == {k: getattr(config, k) for k in shown}
    assert c["seed"].value == 5
    with pytest.raises(ValueError, match=r"unknown edit setting\(s\) \['particles'\]"):
        pipe(gallery["toy face 0 (angry)"], "happy", particles=4)