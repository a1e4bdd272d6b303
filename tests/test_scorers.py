"""The emotion classifier and the pixel reward (emosmc.scorers), tested offline on tiny models saved and loaded
exactly as the hub ids are: labels mapped by name, bad folders refused with the reason."""
import pytest
import torch
from diffusers import AutoencoderKL
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

from emosmc.labels import DIMA806_ID2LABEL, EMOTIONS
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


def tiny_vae():
    torch.manual_seed(0)
    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, sample_size=32,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         block_out_channels=(8, 16), layers_per_block=1, norm_num_groups=4)


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
