"""The 2-D world of notebook 00 and the figures it draws: exact quantities, and the ancestry counts."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from emosmc.smc_result import SMCResult, StepTrace  # noqa: E402
from emosmc.toy.mixture2d import LogisticReward, default_mixture, rare_mode_mixture  # noqa: E402
from emosmc.viz import ancestry_plot, distinct_ancestors, ess_plot, family_ess  # noqa: E402


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_fast_epsilon_equals_the_direct_formula():
    mix = default_mixture()
    x = torch.randn(500, 2, generator=gen(), dtype=torch.float64) * 3
    for a in (0.999, 0.5, 0.01):
        a = torch.tensor(a, dtype=torch.float64)
        m, v = mix._noisy_params(a)
        d2 = ((x[:, None, :] - m) ** 2).sum(-1)
        resp = torch.softmax(mix.weights.log() - d2 / (2 * v) - torch.log(2 * torch.pi * v), -1)
        direct = -(1 - a).sqrt() * (resp[..., None] * (m - x[:, None, :]) / v[:, None]).sum(-2)
        assert torch.allclose(mix.epsilon(x, a), direct, atol=1e-12)


def test_component_masses_are_weighted_shares():
    mix = default_mixture()
    x = mix.sample(3000, gen(1)).reshape(3, 1000, 2)
    W = torch.softmax(torch.randn(3, 1000, generator=gen(2), dtype=torch.float64), -1)
    m = mix.component_masses(x, W)
    assert m.shape == (3, 3) and torch.allclose(m.sum(-1), torch.ones(3, dtype=torch.float64))
    lab = mix.component_of(x[1])
    assert torch.isclose(m[1, 2], W[1][lab == 2].sum())
    equal = mix.component_masses(x[0])  # no weights: the plain shares
    assert torch.allclose(equal, torch.bincount(mix.component_of(x[0]), minlength=3).double() / 1000)


def test_the_rare_mode_is_rare_under_the_prior_and_dominant_under_the_tilt():
    mix = rare_mode_mixture(0.02)
    assert torch.allclose(mix.weights, torch.tensor([0.98, 0.02], dtype=torch.float64))
    masses = mix.tilted_component_masses(LogisticReward(), 3.0, n=200_000, generator=gen(6))
    assert masses[1] > 0.95


def fake_result(ancestors):
    """An SMCResult with the given ancestor rows per step (``None``: no resampling at that step)."""
    B, N = 1, len(next(a for a in ancestors if a is not None))
    trace = [StepTrace(k, 100 - k, torch.full((B,), float(N - k)),
                       ancestors=None if a is None else torch.tensor([a]),
                       resampled=None if a is None else torch.tensor([True]))
             for k, a in enumerate(ancestors)]
    return SMCResult(particles=torch.zeros(B, N, 2), log_weights=torch.zeros(B, N, dtype=torch.float64),
                     rewards=torch.zeros(B, N), best_index=torch.zeros(B, dtype=torch.long), trace=trace)


def test_distinct_ancestors_count_the_lines_that_survive():
    # 4 particles, 3 steps: step 1 resamples to [0, 0, 2, 3], step 3 to [1, 1, 1, 2]
    res = fake_result([None, [0, 0, 2, 3], None, [1, 1, 1, 2]])
    D = distinct_ancestors(res)[:, 0].tolist()
    # at the end 4 lines; before step 3's resampling only particles 1 and 2 had children; particle 1 of step 1
    # was itself a copy of 0, so at the start 0 and 2 are the roots
    assert D == [2, 2, 2, 2, 4]
    fig, ax = plt.subplots()
    ancestry_plot(ax, res)
    assert ax.lines[0].get_ydata().tolist() == D
    plt.close(fig)


def test_the_ess_plot_counts_steps_from_one_and_marks_the_resampling_steps():
    res = fake_result([None, [0, 0, 2, 3], None, [1, 1, 1, 2]])
    fig, ax = plt.subplots()
    ess_plot(ax, res)
    line, marks = ax.lines
    assert line.get_xdata().tolist() == [1, 2, 3, 4]
    assert marks.get_xdata().tolist() == [2, 4]  # the steps that resampled, numbered like state.step + 1
    assert marks.get_ydata().tolist() == [3 / 4, 1 / 4]
    plt.close(fig)


def test_family_ess_counts_copies_once():
    res = fake_result([None, [0, 0, 2, 3], None, [1, 1, 1, 2]])
    # equal final weights: 4 particles, but at the start only two families (0: three particles, 2: one)
    assert torch.isclose(family_ess(res, 4), torch.tensor(4.0, dtype=torch.float64)).all()  # the end: ordinary ESS
    assert torch.isclose(family_ess(res, 0), torch.tensor(1 / (0.75**2 + 0.25**2), dtype=torch.float64)).all()
    assert (family_ess(res, 0) <= distinct_ancestors(res)[0]).all()
