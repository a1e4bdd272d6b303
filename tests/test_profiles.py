"""Loading code of both profiles (emosmc.profiles), tested offline by save_pretrained / from_pretrained round
trips, and the profiles themselves."""
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DModel

from emosmc.profiles import (celebahq_unet_config, get_profile, load_scheduler, load_unet,
                             load_vae, resolve_profile, scheduler_config)


def tiny_vae():
    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=32,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)


def tiny_unet():
    torch.manual_seed(0)
    return UNet2DModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 32),
                       down_block_types=("DownBlock2D", "AttnDownBlock2D"), up_block_types=("AttnUpBlock2D", "UpBlock2D"),
                       norm_num_groups=8, attention_head_dim=8)


def test_vae_and_unet_round_trip(tmp_path):
    vae, unet = tiny_vae(), tiny_unet()
    vae.save_pretrained(tmp_path / "vae")
    unet.save_pretrained(tmp_path / "unet")
    z = torch.randn(1, 4, 16, 16)
    with torch.no_grad():
        assert torch.equal(load_vae(tmp_path / "vae").decode(z).sample, vae.eval().decode(z).sample)
        assert torch.equal(load_unet(tmp_path / "unet")(z, 10).sample, unet.eval()(z, 10).sample)
    with pytest.raises(FileNotFoundError, match="notebooks/02_train_unet"):
        load_unet(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="no VAE found"):
        load_vae(tmp_path / "missing")


def test_scheduler_defaults_are_the_reports():
    s = load_scheduler()
    assert s.config.num_train_timesteps == 1000 and s.config.beta_schedule == "scaled_linear"
    assert s.config.prediction_type == "epsilon" and s.config.clip_sample is False
    assert scheduler_config()["beta_schedule"] == "scaled_linear"


def test_celebahq_unet_is_the_reports_113m_architecture():
    with torch.device("meta"):
        unet = UNet2DModel(**celebahq_unet_config())
    n = sum(p.numel() for p in unet.parameters())
    assert 113.0e6 < n < 114.5e6, n


def test_profiles():
    toy = get_profile("toy")
    assert toy.image_size == 64 and toy.judge is not None
    real = get_profile("celebahq", root="/nonexistent")
    assert real.vae == "stabilityai/sd-vae-ft-ema" and real.classifier == "dima806/facial_emotions_image_detection"
    assert resolve_profile("auto", root="/nonexistent").name == "toy"
    with pytest.raises(ValueError, match=r"unknown profile 'imagenet'; choose one of \['toy', 'celebahq'\]"):
        get_profile("imagenet")


def test_a_profile_owns_its_preset():
    """The presets are EditConfigs; each names only what differs from the defaults (declared once, in SMCConfig
    and EditConfig): the report's settings for celebahq, the tuned toy settings with the latent scorer, guided
    proposals and the detected region."""
    from emosmc.edit_config import EditConfig

    toy, real = get_profile("toy").edit, get_profile("celebahq", root="/nonexistent").edit
    assert real == EditConfig() and real.scorer == "pixel" and real.final_check == 4
    default = EditConfig().to_dict()
    changed = {k: v for k, v in toy.to_dict().items() if default[k] != v}
    assert changed == dict(num_particles=4, num_inference_steps=120, noise_strength=0.7, guidance_scale=20.0,
                           potential="difference", reward_on="x0", resampling="systematic", gradient_scale=20.0,
                           lowpass=4, scorer="latent", region="expression", paste_back=True, min_change=0.1)
    assert toy.final_check == 4
    assert get_profile("toy").edit is not get_profile("toy").edit  # a fresh preset per profile: change it freely


def test_a_profile_owns_its_judge_faces_and_measures(monkeypatch):
    """celebahq is judged by FER-2013's model (not by the classifier that steers), toy by its own judge;
    each gives its faces to edit, and only the toy world has a ground truth."""
    from emosmc.judges import FerJudge
    from emosmc.scorers import EmotionClassifier

    real, toy = get_profile("celebahq", root="/nonexistent"), get_profile("toy")
    assert real.judge == "fer" and isinstance(real.load("judge", "cpu"), FerJudge)
    assert isinstance(toy.load("judge", "cpu"), EmotionClassifier) and toy.judge != toy.classifier
    g = toy.gallery(3)
    assert list(g) == ["toy face 0 (angry)", "toy face 1 (disgust)", "toy face 2 (fear)"]
    assert g["toy face 0 (angry)"].shape == (3, 64, 64) and set(g.identities) == set(g) == set(g.expressions)
    faces = toy.demo_faces(2)
    assert [faces.expressions[n] for n in faces] == ["neutral", "sad"]
    x = torch.stack(list(g.values()))
    assert toy.true_expressions(x, [g.identities[n] for n in g]) == [g.expressions[n] for n in g]
    assert real.true_expressions(x, None) is None
    kept = toy.identity_measure()(x, x, [g.identities[n] for n in g])
    assert kept.shape == (3,) and float(kept.abs().max()) == 0.0
    monkeypatch.delenv("EMOSMC_SAMPLES", raising=False)
    with pytest.raises(FileNotFoundError, match="EMOSMC_SAMPLES"):
        real.gallery(2)
