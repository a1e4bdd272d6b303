"""EmotionEditPipeline and the `python -m emosmc edit` CLI: round trips and clear errors on bad input."""
import numpy as np
import pytest
import torch
from PIL import Image

from emosmc.cli import main
from emosmc.pipeline import EmotionEditPipeline
from emosmc.toy.faces import render, sample_identity

FAST = ["--num-particles", "2", "--num-inference-steps", "10"]


def test_save_and_load_pretrained_give_the_same_edit(pipe, tmp_path, face_png):
    pipe.save_pretrained(tmp_path / "pipe")
    again = EmotionEditPipeline.from_pretrained(tmp_path / "pipe")
    kw = dict(num_particles=3, num_inference_steps=12, noise_strength=0.5, reward_on="x0")
    a = pipe([face_png], "happy", generator=torch.Generator().manual_seed(0), progress=False, **kw)
    b = again([face_png], "happy", generator=torch.Generator().manual_seed(0), progress=False, **kw)
    assert torch.equal(a.images, b.images) and a.targets == ["happy"]
    assert a.nfe["unet"] == 3 * 6 and a.nfe["decode"] > 3 * 5


def test_unknown_target_lists_the_valid_ones(pipe, face_png, capsys):
    with pytest.raises(ValueError, match="joyful.*angry, disgust, fear, happy, neutral, sad, surprise"):
        pipe([face_png], "joyful", num_particles=2, num_inference_steps=4)
    with pytest.raises(SystemExit, match="joyful"):
        main(["edit", str(face_png), "--target", "joyful", "--profile", "toy"])


def test_images_and_targets_must_pair_up(pipe, face_png):
    with pytest.raises(ValueError, match="2 image\\(s\\) but 3 target\\(s\\)"):
        pipe([face_png, face_png], ["happy", "sad", "fear"], num_particles=2, num_inference_steps=4)
    with pytest.raises(ValueError, match="64x64"):
        pipe(torch.zeros(1, 3, 32, 32), "happy", num_particles=2, num_inference_steps=4)


def test_unreadable_and_non_image_files_are_named(tmp_path):
    bad = tmp_path / "holiday.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(SystemExit, match="holiday.jpg is not a readable image"):
        main(["edit", str(bad), "--target", "happy", "--profile", "toy", *FAST])
    with pytest.raises(SystemExit, match="no such image file: .*missing.png"):
        main(["edit", str(tmp_path / "missing.png"), "--target", "happy", "--profile", "toy", *FAST])


def test_grayscale_odd_sized_input_is_converted_said_and_edited(tmp_path, capsys):
    rgb = render(sample_identity(43), "neutral", size=90)
    gray = tmp_path / "gray.png"
    Image.fromarray(np.asarray(Image.fromarray(rgb).convert("L"))[:, 5:]).save(gray)  # 90x85, one channel
    out = tmp_path / "edited.png"
    with pytest.warns(UserWarning, match="converted L to RGB"):
        main(["edit", str(gray), "--target", "happy", "--profile", "toy", "--out", str(out), *FAST])
    text = capsys.readouterr().out
    assert "centre-cropped 85x90 to 85x85" in text and "resized 85x85 to 64x64" in text
    assert Image.open(out).size == (64, 64) and "p(happy)" in text


def test_no_detectable_face_warns(tmp_path):
    noise = tmp_path / "noise.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(noise)
    with pytest.warns(UserWarning, match="noise.png: no face detected"):
        main(["edit", str(noise), "--target", "happy", "--profile", "toy", "--out", str(tmp_path / "o.png"), *FAST])


def test_missing_checkpoint_says_where_it_looked_and_how_to_get_one(tmp_path, face_png, monkeypatch):
    with pytest.raises(FileNotFoundError, match=f"(?s){tmp_path}.*save_pretrained"):
        EmotionEditPipeline.from_pretrained(tmp_path)
    monkeypatch.setenv("EMOSMC_CELEBAHQ", str(tmp_path / "run"))
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path / "no-input"))
    with pytest.raises(SystemExit, match=f"(?s)trained UNet at {tmp_path / 'run' / 'unet'}.*02_train_unet"):
        main(["edit", str(face_png), "--target", "happy", "--profile", "celebahq"])


def test_a_missing_image_is_named_before_any_model_is_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSMC_CELEBAHQ", str(tmp_path / "run"))  # no UNet there either
    with pytest.raises(SystemExit, match=f"no such image file: {tmp_path / 'missing.png'}$"):
        main(["edit", str(tmp_path / "missing.png"), "--target", "happy"])
    with pytest.raises(SystemExit, match="no such image file: .* \\(it is a folder\\)"):
        main(["edit", str(tmp_path), "--target", "happy"])


def test_the_cli_never_edits_a_photo_with_the_toy_models_by_surprise(tmp_path, face_png, monkeypatch):
    monkeypatch.setenv("EMOSMC_CELEBAHQ", str(tmp_path / "run"))
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path / "no-input"))
    with pytest.raises(SystemExit, match="(?s)no trained celebahq UNet found.*--profile toy"):
        main(["edit", str(face_png), "--target", "happy", "--out", str(tmp_path / "e.png")])
    assert not (tmp_path / "e.png").exists()


def test_demo_writes_a_labelled_grid_and_scores_that_agree_with_it(tmp_path):
    """`make demo` on one toy face: a grid image and a JSON whose flip rate is recomputed from its rows."""
    import json

    from emosmc.cli import demo
    from emosmc.labels import EMOTIONS

    summary = demo(tmp_path, n_faces=1, seed=0)
    assert (tmp_path / "demo_grid.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "demo_scores.json").read_text())
    assert saved["settings"]["scorer"] == "latent" and saved == json.loads(json.dumps(summary))
    (face,) = saved["faces"]
    assert set(face["edits"]) == set(EMOTIONS)
    flips = [e["judge_argmax"] == t for t, e in face["edits"].items() if t != face["source"]]
    assert len(flips) == 6 and saved["judge_flip_rate"] == pytest.approx(sum(flips) / 6)
    true = [e["true_expression"] == t for t, e in face["edits"].items() if t != face["source"]]
    assert list(saved)[0] == "true_flip_rate" and saved["true_flip_rate"] == pytest.approx(sum(true) / 6)
    for e in face["edits"].values():
        assert 0 <= e["judge_prob"] <= 1 and 0 <= e["classifier_prob"] <= 1
        assert e["true_expression"] in (*EMOTIONS, "unclear")


def test_the_cli_picks_the_scorer(tmp_path, face_png, capsys):
    for scorer in ("pixel", "latent"):
        main(["edit", str(face_png), "--target", "surprise", "--profile", "toy", "--scorer", scorer,
              "--out", str(tmp_path / f"{scorer}.png"), *FAST])
    assert capsys.readouterr().out.count("p(surprise)") == 2
    a, b = (np.asarray(Image.open(tmp_path / f"{s}.png")) for s in ("pixel", "latent"))
    assert a.shape == b.shape == (64, 64, 3) and not np.array_equal(a, b)
    with pytest.raises(SystemExit, match="2"):  # argparse's usage error
        main(["edit", str(face_png), "--target", "happy", "--profile", "toy", "--scorer", "vision"])
    assert "invalid choice: 'vision'" in capsys.readouterr().err


def test_every_edit_setting_is_a_cli_option_that_reaches_the_pipeline(tmp_path, face_png, monkeypatch, capsys):
    """Every EditConfig setting is an option; the ones given change the profile's preset, the rest stay its."""
    from emosmc import cli, metrics
    from emosmc.edit_config import EditConfig
    from emosmc.profiles import get_profile

    with pytest.raises(SystemExit):
        main(["edit", "--help"])
    help_text = capsys.readouterr().out
    assert all("--" + n.replace("_", "-") in help_text for n in EditConfig.names())
    seen = {}

    class Stop(Exception):
        pass

    class FakePipe:  # records the config the CLI hands the pipeline
        def load_images(self, images, notes):
            return torch.zeros(1, 3, 64, 64)

        def __call__(self, x, target, config, **kw):
            seen["config"] = config
            raise Stop

    monkeypatch.setattr(cli, "_pipeline", lambda profile, hint="": FakePipe())
    monkeypatch.setattr(metrics, "no_face_warnings", lambda *a, **kw: [])
    with pytest.raises(Stop):
        main(["edit", str(face_png), "--target", "sad", "--profile", "toy", "--resampling", "residual",
              "--ess-threshold", "0.5", "--leash", "0.1", "--reward-on", "xt", "--final-check", "2",
              "--proposal-correction", "false"])
    assert seen["config"] == get_profile("toy").edit.replace(resampling="residual", ess_threshold=0.5, leash=0.1,
                                                             reward_on="xt", final_check=2, proposal_correction=False)
    with pytest.raises(SystemExit, match="2"):
        main(["edit", str(face_png), "--target", "sad", "--resampling", "lottery"])
    assert "invalid choice: 'lottery'" in capsys.readouterr().err


def test_samples_from_pure_noise_are_seeded_images_not_noise(pipe):
    a = pipe.sample(2, 20, torch.Generator().manual_seed(3))
    b = pipe.sample(2, 20, torch.Generator().manual_seed(3))
    c = pipe.sample(2, 20, torch.Generator().manual_seed(4))
    assert a.shape == (2, 3, 64, 64) and torch.equal(a, b) and not torch.allclose(a, c)
    # a drawn image is smooth where pure noise is not: neighbouring pixels differ little
    assert (a[..., 1:] - a[..., :-1]).abs().mean() < 0.1
    with pytest.raises(ValueError, match="num_images"):
        pipe.sample(0)


def test_config_args_parse_booleans_and_take_a_profiles_defaults():
    """One argument builder for the CLI and the benchmarks: ``--proposal-correction False`` is False (a
    ``type=bool`` parser would read any non-empty string as True), and the defaults are the preset's."""
    import argparse

    from emosmc.cli import add_config_args, config_from_args
    from emosmc.edit_config import EditConfig
    from emosmc.profiles import get_profile

    preset = get_profile("toy").edit
    p = argparse.ArgumentParser()
    assert add_config_args(p, preset) == EditConfig.names()
    a = p.parse_args(["--proposal-correction", "False", "--guidance-scale", "3"])
    assert a.proposal_correction is False and a.guidance_scale == 3.0
    assert config_from_args(a, preset) == preset.replace(proposal_correction=False, guidance_scale=3.0)
    assert config_from_args(p.parse_args([]), EditConfig()) == preset  # every default is the preset's
    assert p.parse_args(["--proposal-correction", "yes"]).proposal_correction is True
    for bad in (["--potential", "nonsense"], ["--proposal-correction", "maybe"], ["--scorer", "vision"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)
    bare = argparse.ArgumentParser()
    add_config_args(bare)  # no defaults: every option None, "the profile's preset"
    assert config_from_args(bare.parse_args(["--num-particles", "3"]), preset) == preset.replace(num_particles=3)


def test_the_demo_reports_the_profiles_own_judge_not_the_steering_classifier(pipe, capsys):
    """celebahq's judge is FER-2013's model; a profile without a judge falls back, said and named so."""
    import dataclasses

    from emosmc import cli
    from emosmc.judges import FerJudge
    from emosmc.profiles import get_profile

    judge, name = cli._judge(get_profile("celebahq", root="/nonexistent"), pipe)
    assert isinstance(judge, FerJudge) and name == "judge"
    judge, name = cli._judge(dataclasses.replace(get_profile("toy"), judge=None), pipe)
    assert judge is pipe.classifier and name == "classifier" and "no independent judge" in capsys.readouterr().out


def test_an_edit_config_flows_into_the_pipeline_as_it_is(pipe, face_png):
    """A config and the same settings as keywords give the same edit; a bare SMCConfig is the pixel scorer's."""
    from emosmc.edit_config import EditConfig
    from emosmc.smc import SMCConfig

    cfg = EditConfig(SMCConfig(num_particles=2, num_inference_steps=8, noise_strength=0.5, reward_on="x0"))
    a = pipe([face_png], "happy", cfg, generator=torch.Generator().manual_seed(0), progress=False)
    b = pipe([face_png], "happy", generator=torch.Generator().manual_seed(0), progress=False, num_particles=2,
             num_inference_steps=8, noise_strength=0.5, reward_on="x0")
    c = pipe([face_png], "happy", cfg.smc, generator=torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.images, c.images)
    assert a.target_index.tolist() == [3] and a.target_probs.shape == (1,)
    with pytest.raises(ValueError, match=r"unknown edit setting\(s\) \['particles'\]"):
        pipe([face_png], "happy", cfg, particles=4)
    with pytest.raises(ValueError, match="unknown scorer 'vision'"):
        pipe([face_png], "happy", cfg, scorer="vision")
