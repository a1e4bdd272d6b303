"""Hard examples: steered particles labelled by the ground truth, and the loss that learns from them."""
import math

import torch

from emosmc.ground_truth import true_expression
from emosmc.hard_examples import HardExamples, finetune_latent_scorer, hard_loss, mine
from emosmc.latent_scorer import LatentEmotionScorer
from emosmc.pipeline import EmotionEditPipeline
from emosmc.toy.assets import toy_faces
from emosmc.data import images_to_tensor


def test_hard_loss_is_cross_entropy_for_clear_labels_and_not_the_target_for_unclear_ones():
    lp = torch.log(torch.tensor([[0.7, 0.1, 0.1, 0.1, 0.0, 0.0, 0.0],
                                 [0.2, 0.0, 0.0, 0.8, 0.0, 0.0, 0.0]]).clamp_min(1e-12))
    # row 0: truly angry (index 0); row 1: unclear, steering aimed at happy (index 3)
    loss = hard_loss(lp, torch.tensor([0, -1]), torch.tensor([3, 3]))
    assert math.isclose(float(loss), (-math.log(0.7) - math.log(1 - 0.8)) / 2, rel_tol=1e-5)
    # an unclear particle the scorer already rejects costs (almost) nothing
    assert float(hard_loss(lp[:1], torch.tensor([-1]), torch.tensor([3]))) < 0.11


def test_mine_keeps_every_final_particle_with_its_own_identitys_true_expression(pipe):
    imgs, labels, ids, _ = toy_faces(2, 50_000)
    pick = [0, 7 + 3]  # identity 0 angry, identity 1 happy: each towards its 6 other expressions
    x, lab = images_to_tensor(imgs[pick]), labels[pick]
    settings = dict(num_particles=2, num_inference_steps=20, noise_strength=0.45, guidance_scale=10.0,
                    reward_on="x0", resampling="systematic", scorer="latent", final_check=2)
    h = mine(pipe, x, lab, ids, settings, torch.Generator().manual_seed(0), batch=4, progress=False)
    assert len(h) == 2 * 6 * 2 and h.images.shape == (24, 3, 64, 64)
    assert h.targets[:12].tolist() == [t for t in range(7) if t != 0 for _ in range(2)]
    assert h.targets[12:].tolist() == [t for t in range(7) if t != 3 for _ in range(2)]
    right = true_expression(h.images, [ids[0]] * 12 + [ids[1]] * 12).labels
    assert torch.equal(h.labels, right)
    assert torch.allclose(h.images, pipe.decode(h.latents), atol=1e-5)
    s = h.summary()
    assert s["true_flip"] == round(float((h.labels == h.targets).float().mean()), 3)
    assert s["unclear"] == round(float((h.labels < 0).float().mean()), 3)


def test_finetuning_the_latent_scorer_moves_it_towards_the_true_labels():
    pipe = EmotionEditPipeline.from_profile("toy")
    imgs, labels, ids, _ = toy_faces(4, 60_000)
    x = images_to_tensor(imgs)
    with torch.no_grad():
        lat = pipe.encode(x)
    # "hard examples": the clean latents themselves, one marked unclear (not its target)
    hard = HardExamples(lat[:6], x[:6], torch.tensor([*labels[:5].tolist(), -1]), torch.tensor([*labels[:5].tolist(), 3]))
    torch.manual_seed(0)  # the scorer's initial weights; without it the result depends on earlier tests
    scorer = LatentEmotionScorer(sample_size=16, block_channels=(16, 32))
    before = [p.detach().clone() for p in scorer.parameters()]
    with torch.no_grad():
        loss0 = hard_loss(scorer.log_probs(lat, torch.zeros(len(lat), dtype=torch.long)), labels, labels)
    finetune_latent_scorer(scorer, pipe.unet, pipe.scheduler, lat, labels, hard, steps=60, batch_size=16, lr=3e-3,
                           clean_fraction=1.0, progress=False)
    with torch.no_grad():
        loss1 = hard_loss(scorer.log_probs(lat, torch.zeros(len(lat), dtype=torch.long)), labels, labels)
    assert any(not torch.equal(a, b) for a, b in zip(before, scorer.parameters()))
    assert torch.isfinite(loss1) and loss1 < 0.5 * loss0, (loss0, loss1)
