"""Log-space particle weights and resampling schemes (after nchopin's `particles`).

Weights are always kept as *log*-weights. Normalised weights, the effective
sample size and the log-mean weight are derived from them with log-sum-exp, so a
guidance exponent of 50 applied to probabilities of 1e-30 is no problem.

Every tensor here has a leading batch dimension: log-weights are ``(B, N)``
(B independent particle systems of N particles each) and ancestor indices are
``(B, M)`` long tensors indexing the N particles of the same row.

Resampling schemes are registered by name in :data:`RESAMPLING_SCHEMES` and all
work the same way as in ``particles.resampling``: draw a sorted vector of
uniforms ``su`` and return the inverse CDF of the weights at ``su``. Each
scheme can be given its raw uniforms (``u=``) instead of a generator, which is
how the tests check them index-for-index against the ``particles`` library.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Dict, Optional

import torch

__all__ = [
    "LogWeights",
    "RESAMPLING_SCHEMES",
    "resample",
    "inverse_cdf",
    "multinomial",
    "systematic",
    "stratified",
    "residual",
    "offspring_counts",
    "gather_rows",
]


@dataclass(frozen=True)
class LogWeights:
    """Immutable un-normalised log-weights ``lw`` of shape ``(B, N)``.

    ``W`` (normalised weights), ``ess`` and ``log_mean`` are derived from ``lw``
    without ever exponentiating an un-normalised weight.

    A row whose log-weights are all ``-inf`` (every particle has zero weight,
    e.g. the classifier gave probability 0 to all of them) is *degenerate*: its
    normalised weights fall back to uniform and a :class:`RuntimeWarning` is
    emitted. NaN log-weights raise a :class:`ValueError`.
    """

    lw: torch.Tensor

    def __post_init__(self):
        if self.lw.dim() != 2:
            raise ValueError(f"log-weights must have shape (B, N), got {tuple(self.lw.shape)}")
        if torch.isnan(self.lw).any():
            bad = torch.isnan(self.lw).nonzero()[:5].tolist()
            raise ValueError(f"NaN log-weights at (row, particle) {bad}: the reward returned NaN")
        if (self.lw == math.inf).any():
            raise ValueError("+inf log-weight: the reward or potential overflowed")

    @property
    def N(self) -> int:
        return self.lw.shape[1]

    @property
    def degenerate(self) -> torch.Tensor:
        """``(B,)`` bool: rows where every weight is zero."""
        return torch.isneginf(self.lw).all(dim=1)

    def _safe_lw(self) -> torch.Tensor:
        deg = self.degenerate
        if deg.any():
            rows = deg.nonzero().flatten().tolist()
            warnings.warn(
                f"all particles have zero weight in row(s) {rows}; using uniform weights there",
                RuntimeWarning,
                stacklevel=3,
            )
            return torch.where(deg[:, None], torch.zeros_like(self.lw), self.lw)
        return self.lw

    @property
    def W(self) -> torch.Tensor:
        """Normalised weights, ``(B, N)``, each row summing to one."""
        return torch.softmax(self._safe_lw(), dim=1)

    @property
    def ess(self) -> torch.Tensor:
        """Effective sample size ``1 / sum(W**2)``, ``(B,)``, between 1 and N."""
        lw = self._safe_lw()
        lw = lw - lw.logsumexp(dim=1, keepdim=True)
        return torch.exp(-torch.logsumexp(2 * lw, dim=1))

    @property
    def log_mean(self) -> torch.Tensor:
        """``log(mean(exp(lw)))`` per row: the log of the incremental normalising constant."""
        return self.lw.logsumexp(dim=1) - math.log(self.N)

    @property
    def is_uniform(self) -> torch.Tensor:
        """``(B,)`` bool: rows whose weights are exactly equal."""
        return (self.lw == self.lw[:, :1]).all(dim=1) | self.degenerate



# --------------------------------------------------------------------------
# schemes


def inverse_cdf(su: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """Ancestors ``A[b, m] = min{j : cumsum(W[b])[j] >= su[b, m]}`` for sorted ``su``.

    Same as ``particles.resampling.inverse_cdf``, batched.
    """
    cdf = torch.cumsum(W.to(torch.float64), dim=1)
    A = torch.searchsorted(cdf, su.to(torch.float64).contiguous(), right=False)
    return A.clamp_(max=W.shape[1] - 1)


def _rand(shape, generator, device) -> torch.Tensor:
    """Uniforms drawn on the generator's device (a CPU generator for CUDA weights, as diffusers' randn_tensor
    allows), then moved to ``device``."""
    where = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=where, dtype=torch.float64).to(device)


def _uniform_spacings(u: torch.Tensor) -> torch.Tensor:
    """Sorted uniforms from ``M + 1`` raw uniforms (exponential spacings), as in `particles`."""
    z = torch.cumsum(-torch.log(u), dim=-1)
    return z[..., :-1] / z[..., -1:]


def multinomial(W: torch.Tensor, M: Optional[int] = None, generator=None, u=None) -> torch.Tensor:
    """i.i.d. draws from the weights; consumes ``M + 1`` uniforms per row."""
    B, N = W.shape
    M = N if M is None else M
    u = _rand((B, M + 1), generator, W.device) if u is None else u
    return inverse_cdf(_uniform_spacings(u), W)


def systematic(W: torch.Tensor, M: Optional[int] = None, generator=None, u=None) -> torch.Tensor:
    """One uniform per row, shifted by ``m / M``: each particle gets floor or ceil of ``M W_i``."""
    B, N = W.shape
    M = N if M is None else M
    u = _rand((B, 1), generator, W.device) if u is None else u
    su = (u + torch.arange(M, device=W.device, dtype=torch.float64)) / M
    return inverse_cdf(su, W)


def stratified(W: torch.Tensor, M: Optional[int] = None, generator=None, u=None) -> torch.Tensor:
    """One uniform per stratum ``[m/M, (m+1)/M)``."""
    B, N = W.shape
    M = N if M is None else M
    u = _rand((B, M), generator, W.device) if u is None else u
    su = (u + torch.arange(M, device=W.device, dtype=torch.float64)) / M
    return inverse_cdf(su, W)


def residual(W: torch.Tensor, M: Optional[int] = None, generator=None, u=None) -> torch.Tensor:
    """Keep ``floor(M W_i)`` copies of particle i, draw the rest multinomially from the residuals.

    Consumes ``R + 1`` uniforms per row, where R is the number of residual draws
    (when ``u`` is given, its first ``R + 1`` columns are used), as `particles` does.
    """
    B, N = W.shape
    M = N if M is None else M
    W = W.to(torch.float64)
    MW = M * W
    intpart = torch.floor(MW).long()
    res = MW - intpart
    out = torch.empty(B, M, dtype=torch.long, device=W.device)
    idx = torch.arange(N, device=W.device)
    for b in range(B):  # B is a handful of rows; N-sized work is vectorised
        det = torch.repeat_interleave(idx, intpart[b])
        sip = det.numel()
        out[b, :sip] = det
        sres = M - sip
        if sres > 0:
            ub = _rand((1, sres + 1), generator, W.device) if u is None else u[b : b + 1, : sres + 1]
            out[b, sip:] = inverse_cdf(_uniform_spacings(ub), (res[b] / sres)[None])[0]
    return out


RESAMPLING_SCHEMES: Dict[str, Callable[..., torch.Tensor]] = {
    "multinomial": multinomial,
    "systematic": systematic,
    "stratified": stratified,
    "residual": residual,
}


def resample(scheme: str, W: torch.Tensor, M: Optional[int] = None, generator=None) -> torch.Tensor:
    """Ancestor indices ``(B, M)`` drawn from normalised weights ``W`` by the named scheme."""
    try:
        fn = RESAMPLING_SCHEMES[scheme]
    except KeyError:
        raise ValueError(
            f"unknown resampling scheme {scheme!r}; choose one of {sorted(RESAMPLING_SCHEMES)}"
        ) from None
    return fn(W, M=M, generator=generator)


def offspring_counts(A: torch.Tensor, N: int) -> torch.Tensor:
    """How many children each of the N particles has, ``(B, N)``."""
    counts = torch.zeros(A.shape[0], N, dtype=torch.long, device=A.device)
    return counts.scatter_add_(1, A, torch.ones_like(A))


def gather_rows(x: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (B, N, ...) picked by ancestor indices ``A`` (B, M)."""
    idx = A.view(*A.shape, *([1] * (x.dim() - 2))).expand(*A.shape, *x.shape[2:])
    return torch.gather(x, 1, idx)
