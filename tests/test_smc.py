import math

import pytest
import torch
from diffusers.utils.torch_utils import randn_tensor
from scipy import stats

from emosmc.diffusion import img2img_timesteps
from emosmc.smc import SMCConfig, SMCSampler, smc_sample
from emosmc.toy.mixture2d import LogisticReward, default_mixture, make_scheduler

MIX = default_mixture()
REWARD = LogisticReward()


def run2d(generator_seed=0, batch_size=1, reward=REWARD, **cfg):
    sch = make_scheduler()
    base = dict(num_particles=200, num_inference_steps=50, noise_strength=1.0, guidance_scale=2.0,
                potential="difference", reward_on="x0")
    base.update(cfg)
    return smc_sample(sch, MIX.as_model(sch), reward, SMCConfig(**base), batch_size=batch_size, shape=(2,),
                      generator=torch.Generator().manual_seed(generator_seed))


def component_masses(res, row=0):
    labels = MIX.component_of(res.particles[row])
    return torch.zeros(3, dtype=torch.float64).index_add_(0, labels, res.weights[row])


def assert_matches_tilted_target(res, lam):
    """Mode masses within 0.03 of the exact p0(x) sigmoid(2 x1)^lam, and a two-sample KS test per coordinate
    against exact rejection samples that does not reject (Bonferroni, alpha = 0.01)."""
    exact = MIX.tilted_component_masses(REWARD, lam, generator=torch.Generator().manual_seed(0))
    masses = component_masses(res)
    assert (masses - exact).abs().max() < 0.03, (masses, exact)
    draws = res.resampled_draws(torch.Generator().manual_seed(9), scheme="systematic")[0].double()
    truth = MIX.tilted_sample(2000, REWARD, lam, generator=torch.Generator().manual_seed(1))
    for i in range(2):
        assert stats.ks_2samp(draws[:, i].numpy(), truth[:, i].numpy()).pvalue > 0.005
    return exact


def test_exact_epsilon_is_the_score_of_the_noisy_mixture():
    a = torch.tensor(0.3, dtype=torch.float64)
    x = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)).requires_grad_()
    (grad,) = torch.autograd.grad(MIX.log_prob(x, a).sum(), x)
    assert torch.allclose(MIX.epsilon(x.detach(), a), -(1 - a).sqrt() * grad, atol=1e-10)


def test_difference_potential_matches_exact_tilted_target():
    """N = 2000, difference potential on x0 predictions, adaptive systematic resampling:
    the weighted particles reproduce p0(x) sigmoid(2 x1)^2."""
    lam = 2.0
    res = run2d(num_particles=2000, num_inference_steps=100, guidance_scale=lam, ess_threshold=0.5,
                resampling="systematic")
    assert sum(bool(s.resampled.any()) for s in res.trace if s.resampled is not None) >= 1  # it did resample
    exact = assert_matches_tilted_target(res, lam)
    # ... while the report's rule, resampling with p^gamma at every step, over-concentrates:
    paper = run2d(num_particles=2000, num_inference_steps=100, guidance_scale=lam, potential="paper",
                  reward_on="xt", resample_interval=1)
    paper_masses = component_masses(paper)
    assert exact[2] > 0.1 and paper_masses[2] < 0.01  # the top mode (p = 1/2) is wiped out
    assert paper_masses[1] > 0.99 > exact[1] + 0.1


@pytest.mark.parametrize("potential", ["immediate", "difference", "max", "sum"])
def test_final_correction_makes_path_weight_exp_lambda_r(potential):
    """Without resampling the final log-weight must be exactly lambda * r(x_K) for every
    principled potential (the product of potentials along a path telescopes / is corrected)."""
    lam = 1.5
    res = run2d(guidance_scale=lam, potential=potential, ess_threshold=0, num_particles=64)
    assert all(s.resampled is None for s in res.trace)
    r = REWARD.log_prob(res.particles[0])
    assert torch.allclose(res.log_weights[0], lam * r, atol=1e-9)
    assert torch.allclose(res.rewards[0], r, atol=1e-9)


def test_paper_potential_compounds():
    # without resampling, paper's weight is the product of p^gamma over all evaluations, not p^gamma
    # with a constant reward c: paper's weight is c times the number of evaluations, a corrected one's c
    c = -0.7
    def const(x, t):
        return torch.full(x.shape[:2], c)
    paper = run2d(guidance_scale=1.0, potential="paper", ess_threshold=0, num_particles=8, reward=const)
    diff = run2d(guidance_scale=1.0, potential="difference", ess_threshold=0, num_particles=8, reward=const)
    evaluations = len(paper.trace)  # every step after the first, plus the final weighting on the output
    torch.testing.assert_close(paper.log_weights[0], torch.full((8,), c * evaluations, dtype=torch.float64))
    torch.testing.assert_close(diff.log_weights[0], torch.full((8,), c, dtype=torch.float64))


def _plain_img2img(sch, model, src, N, steps, strength, generator):
    ts = img2img_timesteps(sch, steps, strength)
    x = src.repeat_interleave(N, 0)
    noise = randn_tensor(x.shape, generator=generator, dtype=x.dtype)
    x = sch.add_noise(x, noise, ts[:1].repeat(x.shape[0]))
    for t in ts:
        x = sch.step(model(x, t), t, x, generator=generator).prev_sample
    return x


@pytest.mark.parametrize("potential", ["paper", "difference"])
def test_zero_guidance_is_exactly_the_unguided_sampler(potential):
    sch = make_scheduler()
    model = MIX.as_model(sch)
    src = torch.tensor([[1.0, 1.0], [-1.0, 0.5]])
    cfg = SMCConfig(num_particles=8, num_inference_steps=40, noise_strength=0.5, guidance_scale=0.0,
                    potential=potential)
    res = smc_sample(sch, model, REWARD, cfg, init_latents=src, generator=torch.Generator().manual_seed(3))
    plain = _plain_img2img(make_scheduler(), model, src, 8, 40, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(res.particles.reshape(plain.shape), plain)
    assert torch.equal(res.log_weights, torch.zeros_like(res.log_weights))


def test_img2img_step_count_follows_the_report():
    assert len(img2img_timesteps(make_scheduler(), 250, 0.23)) == 57
    assert len(img2img_timesteps(make_scheduler(), 250, 1.0)) == 250
    with pytest.raises(ValueError, match="no reverse step"):
        img2img_timesteps(make_scheduler(), 10, 0.05)


def test_same_seed_same_result_and_other_seed_differs():
    a, b, c = run2d(5), run2d(5), run2d(6)
    assert torch.equal(a.particles, b.particles) and torch.equal(a.log_weights, b.log_weights)
    assert not torch.equal(a.particles, c.particles)


def test_single_particle_works():
    res = run2d(num_particles=1)
    assert res.particles.shape == (1, 1, 2) and int(res.best_index[0]) == 0
    assert float(res.weights[0, 0]) == 1.0


def test_each_row_follows_its_own_target():
    class TwoTargets:  # row 0 wants the right mode, row 1 the left one
        def __call__(self, x, t):
            return torch.stack([REWARD.log_prob(x[0]), REWARD.log_prob(-x[1])])

    res = run2d(batch_size=2, reward=TwoTargets(), num_particles=300, ess_threshold=0.5)
    right0, right1 = component_masses(res, 0)[1], component_masses(res, 1)[1]
    left0, left1 = component_masses(res, 0)[0], component_masses(res, 1)[0]
    assert right0 > 0.7 and left1 > 0.7 and right1 < 0.05 and left0 < 0.05


def test_nan_reward_raises_with_step():
    with pytest.raises(ValueError, match="NaN at step"):
        run2d(reward=lambda x, t: torch.full(x.shape[:2], math.nan))


def test_all_zero_probabilities_warn_and_fall_back_to_uniform():
    with pytest.warns(RuntimeWarning, match="zero weight"):
        res = run2d(reward=lambda x, t: torch.zeros(x.shape[:2]), reward_transform="log", num_particles=10)
    assert res.particles.shape == (1, 10, 2) and torch.isfinite(res.particles).all()


def test_probability_rewards_out_of_range_rejected():
    with pytest.raises(ValueError, match="probabilities"):
        run2d(reward=lambda x, t: torch.full(x.shape[:2], 2.0), reward_transform="log")


def test_bad_reward_shape_is_named():
    with pytest.raises(ValueError, match=r"shape \(B, N\)"):
        run2d(reward=lambda x, t: torch.zeros(3))


@pytest.mark.parametrize("bad", [dict(potential="nope"), dict(resampling="nope"), dict(noise_strength=0.0),
                                 dict(num_particles=0), dict(resample_interval=0), dict(reward_on="pixels"),
                                 dict(ess_threshold=1.5), dict(leash=1.0)])
def test_bad_config_is_refused(bad):
    with pytest.raises(ValueError, match=list(bad)[0].split("_")[0]):  # the message names the setting
        SMCConfig(**bad)


def test_step_by_step_iteration_equals_run():
    sch = make_scheduler()
    cfg = SMCConfig(num_particles=32, num_inference_steps=20, noise_strength=1.0, guidance_scale=2.0)
    sampler = SMCSampler(sch, MIX.as_model(sch), REWARD, cfg, batch_size=1, shape=(2,),
                         generator=torch.Generator().manual_seed(0))
    states = list(sampler)
    assert [s.step for s in states] == list(range(20)) and states[-1].done and not states[0].done
    assert states[0].trace.rewards is None and states[1].trace.rewards is not None  # paper: after R steps
    with pytest.raises(StopIteration):
        next(sampler)
    res = sampler.result()
    ref = run2d(num_particles=32, num_inference_steps=20, guidance_scale=2.0, potential="paper", reward_on="xt")
    assert torch.equal(res.particles, ref.particles)
    assert res.num_model_evals == 32 * 20


def test_trace_and_genealogy_are_consistent():
    res = run2d(num_particles=50, num_inference_steps=30, guidance_scale=3.0, resample_interval=3)
    evals = [s.step for s in res.trace if s.rewards is not None]
    assert evals == list(range(3, 30, 3)) + [29]  # every R steps, plus the final weighting
    G = res.genealogy()
    assert G.shape == (31, 1, 50) and torch.equal(G[-1, 0], torch.arange(50))
    # lines only merge going back in time
    distinct = [len(torch.unique(G[k, 0])) for k in range(31)]
    assert all(a <= b for a, b in zip(distinct, distinct[1:])) and distinct[0] < 50
    assert res.ess_curve().shape == (30, 1)


def test_leash_pulls_towards_the_source():
    sch = make_scheduler()
    src = torch.tensor([[0.0, -3.0]])  # far from every mode
    outs = []
    for leash in (0.0, 0.3):
        cfg = SMCConfig(num_particles=16, num_inference_steps=40, noise_strength=0.6, guidance_scale=0.0, leash=leash)
        res = smc_sample(sch, MIX.as_model(sch), REWARD, cfg, init_latents=src, generator=torch.Generator().manual_seed(0))
        outs.append((res.particles[0] - src).norm(dim=-1).mean())
    assert outs[1] < 0.5 * outs[0]


def test_second_target_gaussian_with_linear_reward_difference_exact_others_collapse():
    """A second analytic target: data N(0, 0.8^2 I), reward r(x) = x_1, lambda = 1.5, reward on x0 every step,
    N = 2000, adaptive systematic resampling. The 100-step sampler's own p_model is Gaussian too (exact
    noise prediction, linear steps), N(0, s^2) with s measured from 20000 unguided draws, so the tilted
    target is exactly N(lambda s^2, s^2) in x_1. `difference` lands on it; `immediate`, `max` and `sum`
    (consistent only as N grows) and the report's rule pile the weight on a few lineages and overshoot."""
    from emosmc.toy.mixture2d import GaussianMixture2D

    gauss = GaussianMixture2D(means=[[0.0, 0.0]], stds=[0.8], weights=[1.0])
    lam = 1.5

    def reward(x, t=None):
        return x[..., 0].to(torch.float64)

    def run(potential, seed, **kw):
        sch = make_scheduler()
        cfg = SMCConfig(**{**dict(num_particles=2000, num_inference_steps=100, noise_strength=1.0, guidance_scale=lam,
                                  potential=potential, reward_on="x0", ess_threshold=0.5, resampling="systematic"), **kw})
        r = smc_sample(sch, gauss.as_model(sch), reward, cfg, batch_size=1, shape=(2,),
                       generator=torch.Generator().manual_seed(seed))
        return float((r.weights[0] * r.particles[0, :, 0].double()).sum()), float(r.ess[0]) / cfg.num_particles

    sch = make_scheduler()
    plain = smc_sample(sch, gauss.as_model(sch), reward, SMCConfig(num_particles=20000, num_inference_steps=100,
                       noise_strength=1.0, guidance_scale=0.0), batch_size=1, shape=(2,),
                       generator=torch.Generator().manual_seed(9))
    s2 = float(plain.particles[0, :, 0].double().var())
    exact = lam * s2  # measured s = 0.76 (the 100-step sampler is a little narrower than the data's 0.8)
    for seed in (0, 1):
        mean, ess = run("difference", seed)
        assert abs(mean - exact) < 0.1 and ess > 0.3, (seed, mean, exact, ess)
        for pot in ("immediate", "max", "sum", "paper"):
            mean, ess = run(pot, seed)
            assert mean > 4 * exact, (pot, seed, mean, exact)  # measured 5.3-9.7 against 0.85
            if pot != "paper":
                # the final correction leaves a few dozen particles: measured 0.0005-0.013 of N over seeds 0-3
                # (`sum`, seed 0: 0.011), against 0.54-0.61 for `difference`
                assert ess < 0.05, (pot, seed, ess)


def test_a_region_keeps_the_source_exactly_where_its_mask_is_zero():
    """Mask (1, 0) on the 2-D toy: coordinate 1 ends exactly at the source's value, coordinate 0 moves; an
    all-ones mask changes nothing at all."""
    sch = make_scheduler()
    src = torch.tensor([[0.0, -3.0], [1.0, 2.0]])
    cfg = SMCConfig(num_particles=16, num_inference_steps=40, noise_strength=0.6, guidance_scale=2.0,
                    potential="difference", reward_on="x0")

    def go(region):
        return smc_sample(sch, MIX.as_model(sch), REWARD, cfg, init_latents=src, region=region,
                          generator=torch.Generator().manual_seed(0))

    half = go(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert torch.equal(half.particles[..., 1], src[:, 1:].expand(2, 16))
    assert (half.particles[..., 0] - src[:, :1]).abs().mean() > 0.3
    assert torch.equal(go(torch.ones(2, 2)).particles, go(None).particles)
    with pytest.raises(ValueError, match="region must be"):
        go(torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        go(torch.full((2, 2), 2.0))
    with pytest.raises(ValueError, match="init_latents"):
        smc_sample(sch, MIX.as_model(sch), REWARD, SMCConfig(num_particles=4, num_inference_steps=10,
                   noise_strength=1.0), batch_size=1, shape=(2,), region=torch.ones(1, 2))


def test_lowpass_keeps_the_sources_block_means_inside_the_region():
    """With the whole image as the region and lowpass=4 the edit's 4x4 block means are the source's."""
    sch = make_scheduler()
    src = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    model = lambda x, t: torch.zeros_like(x)  # noqa: E731 -- any model
    cfg = SMCConfig(num_particles=3, num_inference_steps=20, noise_strength=0.8, guidance_scale=0.0, lowpass=4)
    res = smc_sample(sch, model, lambda x, t: torch.zeros(x.shape[:2]), cfg, init_latents=src,
                     region=torch.ones(1, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    pool = torch.nn.functional.avg_pool2d
    assert torch.allclose(pool(res.particles[0], 4), pool(src, 4).expand(3, -1, -1, -1), atol=1e-5)
    assert not torch.allclose(res.particles[0], src.expand(3, -1, -1, -1), atol=1e-2)  # the details moved
    with pytest.raises(ValueError, match="lowpass.*region"):
        SMCSampler(sch, model, None, cfg, init_latents=src)


def test_one_generator_per_row_makes_a_row_independent_of_its_batch():
    sch = make_scheduler()
    src = torch.tensor([[0.0, -1.0], [1.0, 2.0], [-1.0, 0.5]])
    cfg = SMCConfig(num_particles=32, num_inference_steps=30, noise_strength=0.7, guidance_scale=2.0,
                    potential="difference", reward_on="x0", gradient_scale=0.0)

    def gens(keys):
        return [torch.Generator().manual_seed(100 + k) for k in keys]

    batch = smc_sample(sch, MIX.as_model(sch), REWARD, cfg, init_latents=src, generator=gens([0, 1, 2]))
    alone = smc_sample(sch, MIX.as_model(sch), REWARD, cfg, init_latents=src[1:2], generator=gens([1]))
    assert torch.equal(batch.particles[1], alone.particles[0]) and torch.equal(batch.log_weights[1], alone.log_weights[0])
    with pytest.raises(ValueError, match="2 generators for a batch of 3"):
        smc_sample(sch, MIX.as_model(sch), REWARD, cfg, init_latents=src, generator=gens([0, 1]))
