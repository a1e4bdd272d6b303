"""Hard examples: steered particles labelled by the ground truth, and the loss that learns from them."""
import math

import torch

from emosmc.ground_truth import true_expression
from emosmc.hard_examples import hard_loss, mine
from emosmc.pipeline import EmotionEditPipeline
from emosmc.toy import toy_faces
from emosmc.training import images_to_tensor


def test_hard_loss_is_cross_entropy_for_clear_labels_and_not_the_target_for_unclear_ones():
    lp = torch.log(torch.tensor([[0.7, 0.1, 0.1, 0.1, 0.0, 0.0, 0.0],
                                 [0.2, 0.0, 0.0, 0.8, 0.0, 0.0, 0.0]]).clamp_min(1e-12))
    # row 0: truly angry (index 0); row 1: unclear, steering aimed at happy (index 3)
    loss = hard_loss(lp, torch.tensor([0, -1]), torch.tensor([3, 3]))
    assert math.isclose(float(loss), (-math.log(0.7) - math.log(1 - 0.8)) / 2, rel_tol=1e-5)
    # an unclear particle the scorer already rejects costs (almost) nothing
    assert float(hard_loss(lp[:1], torch.tensor([-1]), torch.tensor([3]))) < 0.11


def test_mine_keeps_every_final_particle_with_its_true_expression():
    pipe = EmotionEditPipeline.from_profile("toy")
    imgs, labels, ids, _ = toy_faces(1, 50_000)
    x, lab = images_to_tensor(imgs[:1]), labels[:1]  # one face (angry), towards the 6 other expressions
    settings = dict(num_particles=2, num_inference_steps=20, noise_strength=0.45, guidance_scale=10.0,
                    reward_on="x0", resampling="systematic", scorer="latent", final_check=2)
    h = mine(pipe, x, lab, ids, settings, torch.Generator().manual_seed(0), batch=4, progress=False)
    assert len(h) == 6 * 2 and h.latents.shape == (12, 4, 16, 16) and h.images.shape == (12, 3, 64, 64)
    assert sorted(set(h.targets.tolist())) == [t for t in range(7) if t != int(lab[0])]
    assert torch.equal(h.labels, true_expression(h.images, ids * 12).labels)
    assert torch.allclose(h.images, pipe.decode(h.latents), atol=1e-5)
    assert set(h.summary()) == {"particles", "true_flip", "unclear"}
