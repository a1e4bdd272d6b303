"""`python -m emosmc` (emosmc.cli): edit and demo, the options every edit setting gets, and bad input named
before any model is looked for."""
import numpy as np
import pytest
import torch
from PIL import Image

from emosmc.cli import main
from emosmc.toy.faces import render, sample_identity

FAST = ["--num-particles", "2", "--num-inference-steps", "10"]


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


def test_demo_writes_a_labelled_grid_and_scores_that_agree_with_it(tmp_path, monkeypatch):
    """`make demo` on one toy face: a grid image and a JSON whose flip rate is recomputed from its rows. The
    bookkeeping is checked, not the edits' quality (test_toy_assets does that): 4 particles, 30 steps here."""
    import json

    from emosmc import cli
    from emosmc.labels import EMOTIONS

    toy = cli.get_profile("toy")
    toy.edit = toy.edit.replace(num_inference_steps=30, num_particles=4)
    monkeypatch.setattr(cli, "get_profile", lambda name: toy)
    summary = cli.demo(tmp_path, n_faces=1, seed=0)
    assert (tmp_path / "demo_grid.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "demo_scores.json").read_text())
    assert saved == json.loads(json.dumps(summary))
    assert saved["settings"]["scorer"] == "latent" and saved["settings"]["num_inference_steps"] == 30
    (face,) = saved["faces"]
    assert set(face["edits"]) == set(EMOTIONS)
    flips = [e["judge_argmax"] == t for t, e in face["edits"].items() if t != face["source"]]
    assert len(flips) == 6 and saved["judge_flip_rate"] == pytest.approx(sum(flips) / 6)
    true = [e["true_expression"] == t for t, e in face["edits"].items() if t != face["source"]]
    same = [e["same_person"] for t, e in face["edits"].items() if t != face["source"]]
    assert list(saved)[:3] == ["counterfactual_rate", "counterfactual_rate_se", "true_flip_rate"]
    assert saved["true_flip_rate"] == pytest.approx(sum(true) / 6)
    assert saved["same_person_rate"] == pytest.approx(sum(same) / 6)
    assert saved["counterfactual_rate"] == pytest.approx(sum(a and b for a, b in zip(true, same)) / 6)
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
