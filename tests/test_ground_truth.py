"""The toy world's ground truth: the true-expression rule, distance to the true counterfactual,
identity kept."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from emosmc.ground_truth import (counterfactual_distance, identity_kept, nearest_render,
                                 true_expression, verdicts)
from emosmc.toy.assets import toy_faces
from emosmc.labels import EMOTIONS
from emosmc.toy.faces import expression_parts, render, sample_identity
from emosmc.data import images_to_tensor


def _faces(n, seed):
    imgs, labels, ids, who = toy_faces(n, seed)  # intensities drawn from INTENSITY_RANGE
    return images_to_tensor(imgs), labels, [ids[int(i)] for i in who]


def test_rule_is_exact_on_clean_renders():
    x, labels, idents = _faces(12, 31_337)  # a seed no model was trained or tuned on
    gt = true_expression(x, idents)
    assert torch.equal(gt.labels, labels)
    assert (gt.margin > 0).all()
    assert gt.is_(labels).all() and gt.is_([EMOTIONS[int(i)] for i in labels]).all()


def test_the_plain_nearest_render_rule_agrees_on_clean_faces_and_never_says_unclear():
    x, labels, idents = _faces(4, 31_337)
    assert torch.equal(nearest_render(x, idents), labels)
    ident = sample_identity(2)
    happy, neutral = render(ident, "happy"), render(ident, "neutral")
    _, mouth = expression_parts(ident)
    mixed = happy.copy()
    mixed[mouth] = neutral[mouth]
    assert int(nearest_render(images_to_tensor(mixed[None]), [ident])[0]) in (EMOTIONS.index("happy"),
                                                                           EMOTIONS.index("neutral"))


def test_rule_is_not_fooled_by_a_blank_mouth():
    """A happy face (happy eyes and brows) whose mouth is painted over with skin is *not* happy."""
    for seed in range(8):
        ident = sample_identity(seed)
        img = render(ident, "happy")
        _, mouth = expression_parts(ident)
        blank = img.copy()
        blank[mouth] = np.array(ident.skin) * 255
        gt = true_expression(images_to_tensor(blank[None]), [ident])
        assert gt.names[0] != "happy", f"identity {seed}: a mouthless face was called happy"
        assert true_expression(images_to_tensor(img[None]), [ident]).names == ["happy"]


def test_happy_eyes_over_a_neutral_mouth_are_unclear():
    """Half an expression is no expression: happy brows and eyes over a neutral mouth (and the reverse)
    are "unclear", not happy and not neutral."""
    for seed in range(8):
        ident = sample_identity(seed)
        happy, neutral = render(ident, "happy"), render(ident, "neutral")
        _, mouth = expression_parts(ident)
        mixed = happy.copy()
        mixed[mouth] = neutral[mouth]
        reverse = neutral.copy()
        reverse[mouth] = happy[mouth]
        gt = true_expression(images_to_tensor(np.stack([mixed, reverse])), [ident, ident])
        assert gt.names == ["unclear", "unclear"], f"identity {seed}: {gt.names}"


def test_counterfactual_distance_is_zero_for_the_truth_and_large_for_another_expression():
    ident = sample_identity(3)
    truth = images_to_tensor(np.stack([render(ident, "happy"), render(ident, "sad")]))
    d = counterfactual_distance(truth, [ident, ident], ["happy", "happy"])
    assert d["l1"][0] < 1e-4 and d["l1_expression"][0] < 1e-4 and d["psnr"][0] > 60
    # the sad face differs from the happy one only where expressions live (about half the image): 1.8x its
    # whole-image distance
    assert d["l1_expression"][1] > 8.0 and d["l1_expression"][1] > 1.6 * d["l1"][1]
    assert d["psnr"][1] < d["psnr"][0] - 20


def test_identity_kept_sees_hair_and_skin_but_not_the_expression():
    ident = sample_identity(5)
    if ident.hair_style == "bald":
        ident = replace(ident, hair_style="short")
    src = images_to_tensor(render(ident, "neutral")[None])
    same_person_smiling = images_to_tensor(render(ident, "happy")[None])
    recoloured = images_to_tensor(render(replace(ident, hair=(0.9, 0.1, 0.1)), "neutral")[None])
    keep = identity_kept(src, same_person_smiling, [ident])
    assert keep["hair_shift"][0] < 3 and keep["skin_shift"][0] < 6 and keep["outside_l1"][0] < 3
    changed = identity_kept(src, recoloured, [ident])
    assert changed["hair_shift"][0] > 50 and changed["skin_shift"][0] < 3


def test_verdict_captions_and_bad_input():
    ident = sample_identity(1)
    x = images_to_tensor(np.stack([render(ident, "sad"), render(ident, "happy")]))
    assert verdicts(x, [ident, ident], ["sad", "sad"]) == ["true: sad ✓", "true: happy ✗"]
    with pytest.raises(ValueError, match="one identity per image"):
        true_expression(x, [ident])
