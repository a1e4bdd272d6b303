"""One evaluation of edits, for the CLI demo, the benchmarks and the ablation runner.

    ev = evaluate(sources, res.images, "happy", profile, identities=ids, classifier_probs=res.target_probs,
                  seconds=elapsed)
    ev.records()      # one dict per edit
    summary(ev)       # rates with their standard errors, means of the rest

The profile supplies what differs between profiles: its judge, its identity measure and -- where it has
one (the toy world) -- the ground truth (:meth:`~emosmc.profiles.Profile.true_expressions`) with the
measures only a ground truth gives (hair and skin shift, distance to the true counterfactual,
:meth:`~emosmc.profiles.Profile.truth_measures`). Each may also be passed in (an already loaded judge,
a measure of one's own) or left out (``False``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Union

import torch

from .labels import EMOTIONS, target_indices

__all__ = ["Evaluation", "evaluate", "rate", "standard_error", "summary", "RATES", "verdict_text"]

# the 0/1 measures, summarised as rates with standard errors: counterfactual = true flip and same person
RATES = ("true_flip", "unclear", "judge_flip", "same_person", "counterfactual")


@dataclass
class Evaluation:
    """Measures of ``B`` edits, one ``(B,)`` tensor each; a measure that was not taken is ``None``."""

    targets: torch.Tensor  # canonical indices
    true_expression: Optional[List[str]] = None  # the ground truth's verdict ("unclear" where it has none)
    true_flip: Optional[torch.Tensor] = None  # 1.0 where the edit truly shows its target
    unclear: Optional[torch.Tensor] = None
    judge_probs: Optional[torch.Tensor] = None  # (B, 7)
    classifier_prob: Optional[torch.Tensor] = None  # the steering classifier's p(target)
    identity: Optional[torch.Tensor] = None  # the profile's identity measure
    seconds: Optional[float] = None  # per edit
    extra: Dict[str, torch.Tensor] = field(default_factory=dict)  # hair_shift, skin_shift, l1, l1_expression, psnr

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def judge_argmax(self) -> Optional[torch.Tensor]:
        return None if self.judge_probs is None else self.judge_probs.argmax(-1)

    @property
    def judge_flip(self) -> Optional[torch.Tensor]:
        return None if self.judge_probs is None else self.judge_argmax == self.targets

    @property
    def judge_prob(self) -> Optional[torch.Tensor]:
        return None if self.judge_probs is None else self.judge_probs[torch.arange(len(self)), self.targets]

    @property
    def true_labels(self) -> Optional[torch.Tensor]:
        """The ground truth's verdicts as canonical indices (-1: unclear)."""
        if self.true_expression is None:
            return None
        return torch.tensor([EMOTIONS.index(n) if n in EMOTIONS else -1 for n in self.true_expression])

    def column(self, key: str) -> Optional[torch.Tensor]:
        """One measure as a float ``(B,)`` tensor (``None`` where it was not taken)."""
        v = self.extra[key] if key in self.extra else getattr(self, key)
        if v is None:
            return None
        if isinstance(v, (int, float)):
            return torch.full((len(self),), float(v))
        return v.float()

    def records(self) -> List[dict]:
        """One dict per edit: target, true_flip (``None`` without a ground truth), unclear, judge_flip,
        judge_prob, classifier_prob, identity, the profile's extra measures, seconds."""
        keys = ["true_flip", "unclear", "judge_flip", "judge_prob", "classifier_prob", "identity", *self.extra,
                "seconds"]
        cols = {k: self.column(k) for k in keys}
        out = []
        for i in range(len(self)):
            r = {"target": EMOTIONS[int(self.targets[i])]}
            if self.true_expression is not None:
                r["true_expression"] = self.true_expression[i]
            r.update({k: None if c is None else float(c[i]) for k, c in cols.items()})
            out.append(r)
        return out


def _optional(make: Callable):
    try:
        return make()
    except (ValueError, FileNotFoundError):  # the profile has none, or its weights are missing
        return None


@torch.no_grad()
def evaluate(sources: torch.Tensor, edits: torch.Tensor, targets: Union[str, Sequence[str], torch.Tensor],
             profile=None, *, identities: Optional[Sequence] = None, judge=None, identity=None, truth=None,
             classifier_probs: Optional[torch.Tensor] = None, seconds: Optional[float] = None) -> Evaluation:
    """Measure ``B`` edits of ``sources`` (both ``(B, 3, H, W)`` in ``[-1, 1]``) towards ``targets``.

    ``judge`` (``(B, 7)`` probabilities), ``identity`` (``(sources, edits, identities) -> (B,)``) and
    ``truth`` (``(edits, identities) -> names``) default to the ``profile``'s (``False``: leave the measure
    out; a judge or identity measure the profile cannot load is left out). The ground truth and its extra
    measures need ``identities`` (one per edit). ``classifier_probs``: the steering classifier's p(target),
    e.g. ``res.target_probs``. ``seconds``: the time of the whole batch (recorded per edit)."""
    tidx = target_indices(targets)
    if len(tidx) == 1 and len(edits) > 1:
        tidx = tidx.repeat(len(edits))
    if len(tidx) != len(edits) or len(sources) != len(edits):
        raise ValueError(f"{len(sources)} sources, {len(edits)} edits and {len(tidx)} targets")
    if judge is None and profile is not None:
        judge = _optional(lambda: profile.load("judge", edits.device))
    own_identity = identity is None and profile is not None
    if own_identity:
        identity = _optional(lambda: profile.identity_measure(edits.device))
    if truth is None and profile is not None and identities is not None:
        truth = profile.true_expressions
    ev = Evaluation(tidx, classifier_prob=None if classifier_probs is None else classifier_probs.detach().cpu(),
                    seconds=None if seconds is None else seconds / len(edits))
    if judge is not None and judge is not False:
        ev.judge_probs = judge(edits).float().cpu()
    if identity is not None and identity is not False:
        try:
            ev.identity = identity(sources.to(edits.device), edits, identities).float().cpu()
        except (TypeError, AttributeError):  # the profile's measure needs the identities it was not given
            if not (own_identity and identities is None):
                raise
    if truth is not None and truth is not False and identities is not None:
        ev.true_expression = truth(edits, identities)
        if ev.true_expression is not None:
            lab = ev.true_labels
            ev.true_flip, ev.unclear = (lab == tidx).float(), (lab < 0).float()
            if profile is not None:
                ev.extra = profile.truth_measures(sources, edits, identities, tidx)
    if profile is not None and ev.identity is not None:
        sp = profile.same_person({"identity": ev.identity, **ev.extra})
        if sp is not None:
            ev.extra["same_person"] = sp
            if ev.true_flip is not None:
                ev.extra["counterfactual"] = ev.true_flip * sp  # the target shown, the person kept
    return ev


def verdict_text(truth: Optional[str], target: str, same: Optional[float] = None) -> str:
    """A grid label, the ground truth first: ``"true: happy ✓ · same person ✓"`` (empty without a truth;
    the second part only where a same-person verdict was given)."""
    if not truth:
        return ""
    text = f"true: {truth} {'✓' if truth == target else '✗'}"
    if same is not None and same == same:
        text += f" · same person {'✓' if same >= 0.5 else '✗'}"
    return text


def standard_error(p: float, n: int) -> float:
    """The standard error of a rate ``p`` over ``n`` 0/1 outcomes, sqrt(p (1 - p) / n)."""
    return math.sqrt(p * (1 - p) / n)


def rate(values) -> Dict[str, Optional[float]]:
    """The mean of 0/1 ``values`` (``None`` and NaN left out) with its standard error sqrt(p (1 - p) / n)."""
    v = [float(x) for x in values if x is not None and float(x) == float(x)]
    if not v:
        return {"rate": None, "se": None, "n": 0}
    p = sum(v) / len(v)
    return {"rate": p, "se": standard_error(p, len(v)), "n": len(v)}


def summary(ev: Union[Evaluation, List[dict]]) -> Dict[str, dict]:
    """Per measure over the edits: rates (true flip, unclear, judge flip) with their standard errors,
    means of the rest (``{"mean": ..., "n": ...}``); measures never taken are left out."""
    recs = ev.records() if isinstance(ev, Evaluation) else ev
    keys = [k for k in (recs[0] if recs else {}) if k not in ("target", "true_expression")]
    out = {}
    for k in keys:
        vals = [r[k] for r in recs if r[k] is not None and r[k] == r[k]]
        if not vals:
            continue
        out[k] = rate(vals) if k in RATES else \
            {"mean": sum(vals) / len(vals), "n": len(vals)}
    return out
