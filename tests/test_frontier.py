"""benchmarks/frontier.py: its rows are run_ablation's, so a run resumes from them; its first version's CSV is
converted without losing a row; its summary gives every rate with its standard error."""
import csv
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import frontier  # noqa: E402
from emosmc.ablation import config_key, read_rows  # noqa: E402
from emosmc.baselines import method_configs  # noqa: E402
from emosmc.profiles import get_profile  # noqa: E402


def _old_row(method, budget, cf, target, flip):
    r = {k: "1.0" for k in frontier.OLD_FIELDS}
    r.update(method=method, budget=budget, cf=cf, face=cf // 2, target=target, true_flip=flip, unclear=0,
             judge_flip=flip, classifier_p=0.9, outside_l1=20.5, unet_evals=f"{budget * 84}.0", decodes="4.0",
             threads=1)
    return r


def test_the_first_versions_csv_becomes_rows_a_resumed_run_skips(tmp_path):
    base = get_profile("toy").edit
    path = tmp_path / "frontier_toy.csv"
    old = [_old_row("best-of-n", 16, i, "happy" if i % 2 else "sad", int(i < 3)) for i in range(4)]
    old.append(_old_row("unguided", 1, 0, "sad", 0))
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, frontier.OLD_FIELDS)
        w.writeheader()
        w.writerows(old)
    frontier.convert_old_csv(path, base)
    rows = read_rows(path)
    assert len(rows) == 5 and {r["method"] for r in rows} == {"best-of-n@16", "unguided@1"}
    done = {(r["config"], r["image"]) for r in rows}
    for c in method_configs(base, ["best-of-n", "unguided"], (16,)):  # what a resumed run would ask for
        n = 4 if c["method"] == "best-of-n@16" else 1
        assert all((config_key(c), str(i)) in done for i in range(n)), c["method"]
    text = path.read_text()
    frontier.convert_old_csv(path, base)  # converted once: a second call changes nothing
    assert path.read_text() == text

    table = frontier.summarise(rows, [1, 16])
    b = table["best-of-n"]["16"]
    assert b["n"] == 4 and b["true_flip"] == 0.75 and b["true_flip_se"] == round(math.sqrt(0.75 * 0.25 / 4), 3)
    assert b["classifier_p"] == 0.9 and b["outside_l1"] == 20.5 and b["unet_evals"] == 16 * 84
    assert b["true_flip_by_target"] == {"happy": 0.5, "sad": 1.0}
    assert table["unguided"]["1"]["true_flip"] == 0.0 and "16" not in table["unguided"]
    assert "| `best-of-n` | — | 0.75 ± 0.22 |" in frontier.markdown(table, [1, 16])


def test_rows_are_keyed_by_face_and_target_so_other_sizes_never_read_them(tmp_path):
    """Positions shift when --faces or --targets-per-face change; keys by face and target do not. Rows keyed by
    position (earlier versions) take their key when the row's target is that counterfactual's."""
    two = frontier.image_ids([(0, 1), (0, 2), (1, 3), (1, 4)])  # 2 targets per face
    one = frontier.image_ids([(0, 1), (1, 3)])  # 1 per face: position 1 is now another counterfactual
    assert two[2] == one[1] == "face1-happy"
    path = tmp_path / "frontier_toy.csv"
    targets = ["disgust", "fear", "happy", "neutral"]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, ["config", "image", "target"])
        w.writeheader()
        w.writerows([{"config": "c", "image": str(k), "target": t} for k, t in enumerate(targets)]
                    + [{"config": "c", "image": "1", "target": "sad"}])  # a position whose target disagrees
    frontier.rekey_positions(path, two)
    with path.open(newline="") as f:
        keys = [r["image"] for r in csv.DictReader(f)]
    assert keys == two + ["1"]
    assert [k for k in keys if k in set(one)] == ["face0-disgust", "face1-happy"]  # what a 1-per-face report reads


def test_the_pareto_front_keeps_the_methods_nothing_beats_on_flip_and_fidelity():
    """A method is on the front when no other has both a true flip and a PSNR at least as high (one of them
    higher); unguided is read at its one sample."""
    def point(flip, psnr):
        return {"true_flip": flip, "psnr": psnr}
    table = {"unguided": {"1": point(0.0, 15.0)}, "a": {"4": point(0.5, 22.0)}, "a+region": {"4": point(0.9, 26.0)},
             "b": {"4": point(1.0, 18.0)}, "c": {"4": point(0.8, 25.0)}, "d": {"16": point(1.0, 30.0)}}
    assert frontier.pareto_front(table, at=4) == ["b", "a+region"]


def test_method_names_put_each_bare_method_before_its_variants():
    names = frontier.method_names(["guided-smc+region", "unguided", "guided-smc", "best-of-n+region+identity",
                                   "best-of-n"])
    assert names == ["unguided", "best-of-n", "best-of-n+region+identity", "guided-smc", "guided-smc+region"]


def test_an_addon_changes_only_what_it_names():
    from emosmc.baselines import method_settings

    base = get_profile("toy").edit
    bare, region = method_settings("smc-paper-latent", base, 4), method_settings("smc-paper-latent+region", base, 4)
    assert (bare.region, bare.gradient_scale, bare.paste_back) == ("none", 0.0, False)  # whatever the preset keeps
    assert (region.region, region.lowpass, region.paste_back, region.min_change) == ("expression", 4, True, 0.1)
    assert {k: v for k, v in bare.to_dict().items() if region.to_dict()[k] != v} == dict(
        region="none", lowpass=0, paste_back=False, min_change=0.0)
    import pytest

    with pytest.raises(ValueError, match=r"\+region"):
        method_settings("smc-paper-latent+colour", base, 4)


def test_the_cost_benchmark_counts_the_unets_flops(pipe):
    """benchmarks/cost_quality.py's floor: the toy UNet's GFLOP per latent from torch's FLOP counter (its convolutions
    and attention on a 4x16x16 latent: about 0.13), against a measured matmul rate."""
    import cost_quality

    f = cost_quality.floor(pipe)
    assert 0.1 < f["unet_gflop_per_latent"] < 0.2 and f["matmul_gflop_per_s"] > 1
    assert f["floor_ms_per_latent"] == round(f["unet_gflop_per_latent"] / f["matmul_gflop_per_s"] * 1000, 2) or \
        abs(f["floor_ms_per_latent"] - f["unet_gflop_per_latent"] / f["matmul_gflop_per_s"] * 1000) < 0.01
