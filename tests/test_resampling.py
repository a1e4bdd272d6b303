import math

import numpy as np
import pytest
import torch

from emosmc.resampling import (
    RESAMPLING_SCHEMES,
    LogWeights,
    multinomial,
    offspring_counts,
    resample,
    residual,
    stratified,
)

SCHEMES = sorted(RESAMPLING_SCHEMES)


def _weights(N=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(2 * torch.randn(1, N, generator=g, dtype=torch.float64), dim=1)


def test_logweights_survive_extreme_exponents():
    # gamma = 50 on probabilities of 1e-30: exp would underflow to 0 for every particle
    p = torch.tensor([[1e-30, 2e-30, 4e-30, 1e-31]], dtype=torch.float64)
    lw = LogWeights(50 * p.log())
    W = lw.W
    assert torch.isfinite(W).all() and torch.allclose(W.sum(), torch.tensor(1.0, dtype=torch.float64))
    # ratios are exact: (4/2)^50 = 2^50
    assert math.isclose(float(W[0, 2] / W[0, 1]), 2.0**50, rel_tol=1e-9)
    assert 1.0 <= float(lw.ess[0]) < 1.0001


def test_ess_and_log_mean():
    lw = LogWeights(torch.zeros(2, 8, dtype=torch.float64))
    assert torch.allclose(lw.ess, torch.full((2,), 8.0, dtype=torch.float64))
    one_hot = LogWeights(torch.tensor([[0.0] + [-math.inf] * 7]))
    assert float(one_hot.ess[0]) == pytest.approx(1.0)
    lw = LogWeights(torch.log(torch.tensor([[1.0, 3.0]], dtype=torch.float64)) + 1000)
    assert float(lw.log_mean[0]) == pytest.approx(1000 + math.log(2.0))
    assert float(lw.ess[0]) == pytest.approx(1 / (0.25**2 + 0.75**2))


def test_nan_log_weights_raise():
    with pytest.raises(ValueError, match="NaN"):
        LogWeights(torch.tensor([[0.0, float("nan")]]))


def test_all_zero_weights_warn_and_fall_back_to_uniform():
    lw = LogWeights(torch.tensor([[-math.inf, -math.inf, -math.inf], [0.0, 0.0, -math.inf]]))
    with pytest.warns(RuntimeWarning, match=r"row\(s\) \[0\]"):
        W = lw.W
    assert torch.allclose(W[0], torch.full((3,), 1 / 3, dtype=W.dtype))
    assert torch.allclose(W[1], torch.tensor([0.5, 0.5, 0.0], dtype=W.dtype))


def test_unknown_scheme_names_the_valid_ones():
    with pytest.raises(ValueError, match="multinomial"):
        resample("bogus", _weights())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_offspring_counts_are_unbiased(scheme):
    """Average offspring count of particle i over many draws is N W_i (within 5 standard errors)."""
    N, reps = 10, 4000
    W = _weights(N).expand(reps, N).contiguous()  # reps independent rows in one batch
    g = torch.Generator().manual_seed(1)
    counts = offspring_counts(resample(scheme, W, generator=g), N).double()
    mean, se = counts.mean(0), counts.std(0) / math.sqrt(reps)
    expected = N * W[0]
    assert (counts.sum(1) == N).all()
    assert ((mean - expected).abs() <= 5 * se + 1e-9).all(), (mean, expected)


@pytest.mark.parametrize("scheme", ["systematic"])
def test_low_variance_scheme_gives_floor_or_ceil(scheme):
    N = 10
    W = _weights(N).expand(2000, N).contiguous()
    counts = offspring_counts(resample(scheme, W, generator=torch.Generator().manual_seed(2)), N)
    NW = N * W[0]
    assert ((counts >= torch.floor(NW)) & (counts <= torch.ceil(NW))).all()


def test_residual_keeps_the_integer_parts():
    """Residual resampling keeps floor(N W_i) copies deterministically; the rest is multinomial
    (as in `particles`), so a count can exceed ceil(N W_i) -- only the floor is guaranteed."""
    N = 10
    W = _weights(N).expand(2000, N).contiguous()
    counts = offspring_counts(residual(W, generator=torch.Generator().manual_seed(3)), N)
    assert (counts >= torch.floor(N * W[0])).all()


def test_multinomial_and_stratified_only_unbiased_not_floor_ceil():
    # documents the difference: these can give a particle more than ceil(N W_i) children
    N = 10
    W = _weights(N).expand(2000, N).contiguous()
    for fn in (multinomial, stratified):
        counts = offspring_counts(fn(W, generator=torch.Generator().manual_seed(4)), N)
        assert (counts > torch.ceil(N * W[0])).any()


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_particles_library_given_same_uniforms(scheme, seed):
    rs = pytest.importorskip("particles.resampling")
    N = 50
    W = _weights(N, seed)
    Wnp = W[0].numpy()
    np.random.seed(seed)
    expected = getattr(rs, scheme)(Wnp, N)
    # replay exactly the uniforms `particles` consumed
    np.random.seed(seed)
    if scheme == "multinomial":
        u = np.random.rand(N + 1)
    elif scheme == "systematic":
        u = np.random.rand(1)
    elif scheme == "stratified":
        u = np.random.rand(N)
    else:
        sres = N - int(np.floor(N * Wnp).sum())
        u = np.random.rand(sres + 1)
    ours = RESAMPLING_SCHEMES[scheme](W, u=torch.from_numpy(u)[None])
    assert ours[0].tolist() == list(expected)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_same_generator_same_ancestors(scheme):
    W = _weights(30)
    a = resample(scheme, W, generator=torch.Generator().manual_seed(7))
    b = resample(scheme, W, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
