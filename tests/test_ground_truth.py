"""The toy world's ground truth: the true-expression rule, distance to the true counterfactual,
identity kept."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from emosmc.ground_truth import (counterfactual_distance, expression_posterior, identity_kept, nearest_render,
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


def _calibration_gap(posterior, truth, bins=5):
    """Largest |mean posterior - frequency of the truth| over bins of candidate 0's probability."""
    p0, hit = posterior[:, 0], (truth == 0).float()
    edges = torch.linspace(0, 1, bins + 1)
    gaps = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (p0 >= lo) & (p0 < hi)
        if m.sum() >= 1000:  # a frequency over 1000 draws has a standard error of at most 0.016
            gaps.append((p0[m].mean() - hit[m].mean()).abs())
    return max(gaps)


def test_expression_posterior_is_calibrated():
    """The exact posterior over candidates given z_t: its mean over draws is the prior, and within
    bins of its value the truth is found as often as it says (20 000 draws, K = 3 candidates in 8-D).
    Noise drawn at another level than the one assumed breaks the calibration, so the test can fail."""
    g = torch.Generator().manual_seed(0)
    cand = torch.randn(3, 8, generator=g) * 0.6
    truth = torch.randint(0, 3, (20000,), generator=g)
    eps = torch.randn(20000, 8, generator=g)
    z = lambda abar: abar ** 0.5 * cand[truth] + (1 - abar) ** 0.5 * eps
    post = expression_posterior(z(0.5), cand, 0.5)
    assert torch.allclose(post.sum(1), torch.ones(20000), atol=1e-5)
    assert torch.allclose(post.mean(0), torch.full((3,), 1 / 3), atol=0.015)
    assert _calibration_gap(post, truth) < 0.05
    assert _calibration_gap(expression_posterior(z(0.8), cand, 0.5), truth) > 0.15  # wrong noise level assumed
    sharp = expression_posterior(z(0.9999), cand[None].expand(20000, 3, 8), 0.9999)  # per-row candidates
    assert (sharp.argmax(1) == truth).float().mean() == 1.0
    perm = torch.stack([torch.randperm(3, generator=g) for _ in range(20000)])  # each row its own candidate order
    assert torch.allclose(expression_posterior(z(0.5), cand[perm], 0.5), post.gather(1, perm), atol=1e-6)
    with pytest.raises(ValueError, match="alpha_bar"):
        expression_posterior(z(0.5), cand, 1.0)
    with pytest.raises(ValueError, match="do not match"):
        expression_posterior(z(0.5), cand[:, :4], 0.5)
