"""The seven emotions, in one canonical order, and their lookup.

They are the label names of ``dima806/facial_emotions_image_detection``, sorted. Its own ``id2label``
order differs (:data:`DIMA806_ID2LABEL`), so a classifier's outputs are always mapped by name
(:class:`emosmc.scorers.EmotionClassifier`), never by index.
"""
from __future__ import annotations

from typing import Tuple

__all__ = ["EMOTIONS", "emotion_index", "DIMA806_ID2LABEL"]

EMOTIONS: Tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")

# The label order of dima806/facial_emotions_image_detection's config (not alphabetical).
DIMA806_ID2LABEL = {0: "sad", 1: "disgust", 2: "angry", 3: "neutral", 4: "fear", 5: "surprise", 6: "happy"}


def emotion_index(name: str) -> int:
    """Canonical index of an emotion name; an unknown name lists the valid ones."""
    key = str(name).strip().lower()
    if key not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; valid targets are {', '.join(EMOTIONS)}")
    return EMOTIONS.index(key)
