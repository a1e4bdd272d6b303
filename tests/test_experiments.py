"""The experiments kept in benchmarks/experiments/ (tried and not shipped, or used by one benchmark only):
DDIM at a fixed eta, the exact expression posterior, and the rounds of hard examples."""
import math
import sys
from pathlib import Path

import pytest
import torch

from emosmc.data import images_to_tensor
from emosmc.ground_truth import true_expression
from emosmc.latent_scorer import LatentEmotionScorer
from emosmc.pipeline import EmotionEditPipeline
from emosmc.smc import SMCConfig, smc_sample
from emosmc.toy.assets import toy_faces
from emosmc.toy.mixture2d import make_scheduler
from test_smc import MIX, REWARD

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from experiments.ddim_eta import ddim_at_eta  # noqa: E402
from experiments.expression_posterior import expression_posterior  # noqa: E402
from experiments.hard_examples import HardExamples, finetune_latent_scorer, hard_loss, mine  # noqa: E402


# -- DDIM at a fixed eta (benchmarks/toy_quality.py --ddim-eta) ------------------------------------------------

def _run_with(sch, guidance, seed=4, **extra):
    cfg = SMCConfig(num_particles=64, num_inference_steps=30, noise_strength=1.0, guidance_scale=guidance,
                    potential="difference", reward_on="x0", **extra)
    return smc_sample(sch, MIX.as_model(sch), REWARD, cfg, batch_size=1, shape=(2,),
                      generator=torch.Generator().manual_seed(seed))


def test_ddim_at_eta_one_is_the_ddpm_step():
    ddpm = _run_with(make_scheduler(), 2.0)
    ddim = _run_with(ddim_at_eta(make_scheduler(), 1.0), 2.0)
    assert torch.allclose(ddim.particles, ddpm.particles, atol=1e-4)
    with pytest.raises(ValueError, match="eta"):
        ddim_at_eta(make_scheduler(), 1.5)
    with pytest.raises(ValueError, match="not a DDPM scheduler"):  # the gradient nudge writes DDPM's step out
        _run_with(ddim_at_eta(make_scheduler(), 1.0), 2.0, gradient_scale=1.0)


def test_deterministic_ddim_can_only_copy_the_particles_it_starts_with():
    """eta = 0: no noise after the start, so steering only selects among the unguided trajectories."""
    plain = _run_with(ddim_at_eta(make_scheduler(), 0.0), 0.0).particles[0]
    steered = _run_with(ddim_at_eta(make_scheduler(), 0.0), 8.0).particles[0]
    nearest = torch.cdist(steered, plain).min(1).values
    assert nearest.max() < 1e-5  # every steered particle is one of the unguided ones
    assert len(torch.unique(steered, dim=0)) < len(plain)  # and resampling has copied some
    stochastic = _run_with(ddim_at_eta(make_scheduler(), 1.0), 8.0).particles[0]
    assert torch.cdist(stochastic, plain).min(1).values.max() > 1e-2  # with noise it draws new ones


# -- the exact expression posterior (benchmarks/toy_denoiser.py) ------------------------------------------------

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


# -- rounds of hard examples -------------------------------------------------------------------------------------

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
