"""The seven emotions and their names (emosmc.labels)."""
import pytest

import torch

from emosmc.labels import DIMA806_ID2LABEL, EMOTIONS, FER_LABELS, TOY_JUDGE_LABELS, emotion_index, target_indices


def test_unknown_emotion_lists_valid_ones():
    assert emotion_index(" Happy ") == 3
    with pytest.raises(ValueError, match="angry, disgust, fear, happy, neutral, sad, surprise"):
        emotion_index("joyful")



def test_every_label_order_is_declared_here_and_names_the_seven():
    """The models' own orders (dima806's, fer's, the toy judge's) live in labels.py; each is a permutation of
    EMOTIONS and none is the canonical order, so nothing can work by index by accident."""
    from emosmc.profiles import toy_judge

    for order in (tuple(DIMA806_ID2LABEL[i] for i in range(7)), FER_LABELS, TOY_JUDGE_LABELS):
        assert sorted(order) == list(EMOTIONS) and order != EMOTIONS
    assert tuple(toy_judge().config.id2label[i] for i in range(7)) == TOY_JUDGE_LABELS


def test_targets_become_indices_once():
    assert target_indices("sad").tolist() == [5] and target_indices(["angry", "Happy"]).tolist() == [0, 3]
    idx = torch.tensor([2, 6])
    assert target_indices(idx) is idx
    with pytest.raises(ValueError, match="joyful"):
        target_indices(["happy", "joyful"])
