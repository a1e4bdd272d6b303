"""EmotionEditPipeline: round trips, seeded samples, the settings it is given, and clear errors on bad input
(the CLI on top of it: test_cli.py)."""
import pytest
import torch

from emosmc.cli import main
from emosmc.pipeline import EmotionEditPipeline


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


def test_missing_checkpoint_says_where_it_looked_and_how_to_get_one(tmp_path, face_png, monkeypatch):
    with pytest.raises(FileNotFoundError, match=f"(?s){tmp_path}.*save_pretrained"):
        EmotionEditPipeline.from_pretrained(tmp_path)
    monkeypatch.setenv("EMOSMC_CELEBAHQ", str(tmp_path / "run"))
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path / "no-input"))
    with pytest.raises(SystemExit, match=f"(?s)trained UNet at {tmp_path / 'run' / 'unet'}.*02_train_unet"):
        main(["edit", str(face_png), "--target", "happy", "--profile", "celebahq"])


def test_samples_from_pure_noise_are_seeded_images_not_noise(pipe):
    a = pipe.sample(2, 20, torch.Generator().manual_seed(3))
    b = pipe.sample(2, 20, torch.Generator().manual_seed(3))
    c = pipe.sample(2, 20, torch.Generator().manual_seed(4))
    assert a.shape == (2, 3, 64, 64) and torch.equal(a, b) and not torch.allclose(a, c)
    # a drawn image is smooth where pure noise is not: neighbouring pixels differ little
    assert (a[..., 1:] - a[..., :-1]).abs().mean() < 0.1
    with pytest.raises(ValueError, match="num_images"):
        pipe.sample(0)


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
