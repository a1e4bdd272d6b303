"""Loading code of both profiles, tested offline by save_pretrained / from_pretrained round trips."""
import pytest
import torch
from diffusers import AutoencoderKL, UNet2DModel
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

from emosmc.labels import DIMA806_ID2LABEL
from emosmc.profiles import (celebahq_unet_config, get_profile, load_scheduler, load_unet,
                             load_vae, resolve_profile, scheduler_config)
from emosmc.labels import EMOTIONS, emotion_index
from emosmc.scorers import EmotionClassifier, PixelEmotionReward


def tiny_vit(id2label, favourite=None):
    torch.manual_seed(0)
    cfg = ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, num_labels=len(id2label), id2label=id2label,
                    label2id={v: k for k, v in id2label.items()})
    m = ViTForImageClassification(cfg)
    if favourite is not None:  # make one *named* label win by a wide margin
        with torch.no_grad():
            m.classifier.weight.zero_()
            m.classifier.bias.zero_()
            fav = [k for k, v in id2label.items() if v == favourite][0]
            m.classifier.bias[fav] = 10.0
    return m


def save_classifier(m, path, size=224):
    m.save_pretrained(path)
    ViTImageProcessor(size={"height": size, "width": size}, image_mean=[0.5, 0.5, 0.5],
                      image_std=[0.5, 0.5, 0.5]).save_pretrained(path)


def test_dima806_like_classifier_is_mapped_by_name(tmp_path):
    save_classifier(tiny_vit(DIMA806_ID2LABEL, favourite="happy"), tmp_path, size=32)
    clf = EmotionClassifier.from_pretrained(tmp_path)
    p = clf(torch.zeros(2, 3, 64, 64))  # resized to the processor size on the way in
    assert p.shape == (2, 7)
    assert int(p[0].argmax()) == EMOTIONS.index("happy") == 3
    assert DIMA806_ID2LABEL[3] == "neutral"  # index 3 of the raw model is NOT happy
    assert torch.allclose(p.sum(-1), torch.ones(2))


def test_classifier_with_other_labels_is_refused(tmp_path):
    save_classifier(tiny_vit({0: "cat", 1: "dog"}), tmp_path)
    with pytest.raises(ValueError, match="not the seven emotions"):
        EmotionClassifier.from_pretrained(tmp_path)


def test_missing_classifier_names_the_place(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        EmotionClassifier.from_pretrained(tmp_path / "nowhere")


def test_unknown_emotion_lists_valid_ones():
    assert emotion_index(" Happy ") == 3
    with pytest.raises(ValueError, match="angry, disgust, fear, happy, neutral, sad, surprise"):
        emotion_index("joyful")


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


def test_pixel_reward_picks_each_rows_target(tmp_path):
    save_classifier(tiny_vit(DIMA806_ID2LABEL, favourite="sad"), tmp_path, size=32)
    clf = EmotionClassifier.from_pretrained(tmp_path)
    vae = tiny_vae().eval()
    r = PixelEmotionReward(vae, clf, ["sad", "happy"])
    out = r(torch.randn(2, 3, 4, 8, 8))
    assert out.shape == (2, 3) and (out[0] > -0.01).all() and (out[1] < -5).all()
    assert r.num_decodes == 6
    with pytest.raises(ValueError, match="2 target"):
        r(torch.randn(3, 1, 4, 8, 8))


def test_profiles():
    toy = get_profile("toy")
    assert toy.image_size == 64 and toy.judge is not None
    real = get_profile("celebahq", root="/nonexistent")
    assert real.vae == "stabilityai/sd-vae-ft-ema" and real.classifier == "dima806/facial_emotions_image_detection"
    assert resolve_profile("auto", root="/nonexistent").name == "toy"
    with pytest.raises(ValueError, match="toy"):
        get_profile("imagenet")
