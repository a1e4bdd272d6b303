"""emosmc.evaluation: one evaluation of edits, driven by the profile."""
import math

import pytest
import torch

from emosmc.data import images_to_tensor
from emosmc.evaluation import evaluate, rate, summary
from emosmc.labels import EMOTIONS
from emosmc.profiles import get_profile
from emosmc.toy.faces import render, sample_identity


@pytest.fixture(scope="module")
def toy():
    ids = [sample_identity(700 + i) for i in range(3)]
    src = images_to_tensor(torch.stack([torch.from_numpy(render(d, "neutral")) for d in ids]))
    targets = ["happy", "sad", "angry"]
    truth = images_to_tensor(torch.stack([torch.from_numpy(render(d, t)) for d, t in zip(ids, targets)]))
    return get_profile("toy"), ids, src, targets, truth


def test_the_true_counterfactual_is_a_true_flip_at_distance_zero(toy):
    prof, ids, src, targets, truth = toy
    ev = evaluate(src, truth, targets, prof, identities=ids, seconds=3.0)
    assert ev.true_flip.tolist() == [1.0, 1.0, 1.0] and ev.unclear.tolist() == [0.0] * 3
    assert ev.true_expression == targets
    assert ev.extra["l1_expression"].tolist() == pytest.approx([0.0] * 3, abs=1e-4)
    assert ev.identity.tolist() == pytest.approx([0.0] * 3, abs=0.05)  # untouched (anti-aliasing aside)
    assert ev.extra["hair_shift"].nan_to_num(0).tolist() == pytest.approx([0.0] * 3, abs=0.05)
    assert ev.judge_probs.shape == (3, 7) and ev.judge_prob.shape == (3,)
    recs = ev.records()
    assert [r["true_flip"] for r in recs] == [1.0] * 3 and all(r["seconds"] == 1.0 for r in recs)
    assert {"judge_flip", "judge_prob", "identity", "l1_expression", "skin_shift"} <= set(recs[0])


def test_the_source_itself_flips_nothing(toy):
    prof, ids, src, targets, truth = toy
    ev = evaluate(src, src, targets, prof, identities=ids)
    assert ev.true_flip.tolist() == [0.0] * 3 and ev.true_expression == ["neutral"] * 3
    assert (ev.extra["l1_expression"] > 1).all()  # far from the counterfactual
    assert summary(ev)["true_flip"] == {"rate": 0.0, "se": 0.0, "n": 3}


def test_targets_as_names_or_indices_agree(toy):
    prof, ids, src, targets, truth = toy
    idx = torch.tensor([EMOTIONS.index(t) for t in targets])
    a = evaluate(src, truth, targets, prof, identities=ids, judge=False)
    b = evaluate(src, truth, idx, prof, identities=ids, judge=False)
    assert a.true_flip.tolist() == b.true_flip.tolist() and a.judge_probs is None
    assert evaluate(src, truth, "happy", prof, identities=ids, judge=False).true_flip.tolist() == [1.0, 0.0, 0.0]


def test_the_standard_error_of_a_rate():
    r = rate([1, 1, 0, 0, 1, None, float("nan"), 1])
    assert r["n"] == 6 and r["rate"] == pytest.approx(4 / 6)
    assert r["se"] == pytest.approx(math.sqrt((4 / 6) * (2 / 6) / 6))
    assert rate([]) == {"rate": None, "se": None, "n": 0}


def test_a_photo_profile_has_no_ground_truth(toy):
    _, ids, src, targets, truth = toy
    photo = get_profile("celebahq")
    judge = lambda x: torch.full((len(x), 7), 1 / 7)
    ev = evaluate(src, truth, targets, photo, identities=ids, judge=judge, identity=False,
                  classifier_probs=torch.tensor([0.9, 0.1, 0.5]))
    assert ev.true_flip is None and ev.true_expression is None and ev.extra == {}
    recs = ev.records()
    assert all(r["true_flip"] is None and r["identity"] is None for r in recs)
    assert [r["classifier_prob"] for r in recs] == pytest.approx([0.9, 0.1, 0.5])
    assert "true_flip" not in summary(ev) and summary(ev)["judge_flip"]["n"] == 3


def test_the_counterfactual_rate_needs_the_target_and_the_same_person(toy):
    """The true counterfactual keeps the person and shows the target: a counterfactual. The same expression
    on another skin and hair shows the target but is another person; the source itself is the person without
    the target."""
    from dataclasses import replace

    prof, ids, src, targets, truth = toy
    ev = evaluate(src, truth, targets, prof, identities=ids)
    assert ev.extra["same_person"].tolist() == [1.0] * 3 and ev.extra["counterfactual"].tolist() == [1.0] * 3
    others = [replace(d, skin=(0.3, 0.6, 0.2), hair=(0.9, 0.9, 0.1)) for d in ids]
    recoloured = images_to_tensor(torch.stack([torch.from_numpy(render(d, t)) for d, t in zip(others, targets)]))
    ev2 = evaluate(src, recoloured, targets, prof, identities=ids)
    assert ev2.true_flip.tolist() == [1.0] * 3 and ev2.extra["counterfactual"].tolist() == [0.0] * 3
    ev3 = evaluate(src, src, targets, prof, identities=ids)
    assert ev3.extra["same_person"].tolist() == [1.0] * 3 and ev3.extra["counterfactual"].tolist() == [0.0] * 3
    s = summary(ev2)
    assert s["counterfactual"] == {"rate": 0.0, "se": 0.0, "n": 3} and s["same_person"]["rate"] == 0.0


def test_a_grid_label_shows_the_expression_then_the_person():
    from emosmc.evaluation import verdict_text

    assert verdict_text("happy", "happy", 1.0) == "true: happy ✓ · same person ✓"
    assert verdict_text("sad", "happy", 0.0) == "true: sad ✗ · same person ✗"
    assert verdict_text("happy", "happy") == "true: happy ✓" and verdict_text(None, "happy", 1.0) == ""
