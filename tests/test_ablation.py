"""The ablation runner: report metrics, one CSV row per (config, image), resume without rework."""
import math
from pathlib import Path

import pytest
import torch

from emosmc.ablation import grid, one_at_a_time, read_rows, run_ablation, summarise
from emosmc.metrics import Realism
from emosmc.toy.faces import render, sample_identity
from emosmc.data import images_to_tensor


@pytest.fixture(scope="module")
def realism():
    return Realism()


@pytest.fixture(scope="module")
def faces():
    return images_to_tensor(torch.stack([torch.from_numpy(render(sample_identity(300 + i), "sad")) for i in range(2)]))


class Counting:
    def __init__(self, pipe):
        self.pipe, self.calls = pipe, []

    def __getattr__(self, k):
        return getattr(self.pipe, k)

    def __call__(self, images, targets, config, **kw):
        self.calls.append((len(images), config.guidance_scale))
        return self.pipe(images, targets, config, **kw)


BASE = dict(num_particles=3, num_inference_steps=20, noise_strength=0.5, guidance_scale=5.0, resample_interval=1,
            potential="paper", reward_on="x0", resampling="systematic")


def test_configs_vary_one_parameter_at_a_time():
    cs = one_at_a_time(BASE, guidance_scale=[1, 5], noise_strength=[0.2, 0.4, 0.6])
    assert len(cs) == 5 and [c["swept"] for c in cs] == ["guidance_scale"] * 2 + ["noise_strength"] * 3
    assert cs[3]["noise_strength"] == 0.4 and cs[3]["guidance_scale"] == 5.0
    assert len(grid(BASE, num_particles=[2, 4], resample_interval=[1, 2, 5])) == 6


def test_sweep_writes_rows_and_resumes_without_redoing_them(pipe, realism, faces, tmp_path):
    csv_path = tmp_path / "ablation.csv"
    counting = Counting(pipe)
    cs = one_at_a_time(BASE, guidance_scale=[0.0, 20.0])
    rows = run_ablation(counting, faces, ["a", "b"], cs[:1], "happy", csv_path, realism=realism, progress=False)
    assert len(rows) == 2 and counting.calls == [(2, 0.0)]
    # the sweep is extended (or restarted after a crash): only the missing config runs
    rows = run_ablation(counting, faces, ["a", "b"], cs, "happy", csv_path, realism=realism, progress=False)
    assert counting.calls == [(2, 0.0), (2, 20.0)] and len(rows) == 4
    assert len(run_ablation(counting, faces, ["a", "b"], cs, "happy", csv_path, realism=realism, progress=False)) == 4
    assert len(counting.calls) == 2
    for r in rows:
        assert 0 <= r["target_prob"] <= 1 and 0 <= r["realism"] <= 1 and math.isnan(r["judge_prob"])
        assert r["unet_evals"] == 3 * 10  # N particles x the steps left at strength 0.5 of 20
    guided = [r["target_prob"] for r in rows if r["guidance_scale"] == 20.0]
    assert min(r["decodes"] for r in rows if r["guidance_scale"] == 20.0) > max(
        r["decodes"] for r in rows if r["guidance_scale"] == 0.0)
    s = summarise(rows, "guidance_scale")
    assert [x["guidance_scale"] for x in s] == [0.0, 20.0] and s[1]["target_accuracy"] == pytest.approx(sum(guided) / 2)


def test_toy_rows_carry_the_ground_truth_verdict(pipe, realism, faces, tmp_path):
    from emosmc.ground_truth import true_expression

    ids = [sample_identity(300 + i) for i in range(2)]
    cs = one_at_a_time(BASE, guidance_scale=[0.0])
    from emosmc.ground_truth import identity_distance
    from emosmc.profiles import get_profile

    rows = run_ablation(pipe, faces, ["a", "b"], cs, "sad", tmp_path / "t.csv", realism=realism, identities=ids,
                        identity=get_profile("toy").identity_measure(), progress=False)
    # guidance 0 is plain img2img of a sad face at strength 0.5: the truth decides whether it stayed sad
    from emosmc.profiles import row_generators

    out = pipe(faces, "sad", generator=row_generators(0, ["a", "b"]), progress=False,  # one per image id, as the runner
               **{k: v for k, v in cs[0].items() if k != "swept"})
    expected = true_expression(out.images, ids).is_(["sad", "sad"]).float().tolist()
    assert [r["true_flip"] for r in rows] == expected
    assert summarise(rows, "guidance_scale")[0]["true_flip"] == pytest.approx(sum(expected) / 2)
    # the toy profile's identity measure: pixel distance outside the expression region, per face
    assert [r["identity"] for r in rows] == pytest.approx(identity_distance(faces, out.images, ids).tolist(), abs=1e-4)


def test_results_are_deterministic_for_a_seed(pipe, realism, faces, tmp_path):
    cs = one_at_a_time(BASE, num_particles=[2])
    a = run_ablation(pipe, faces, ["a", "b"], cs, "angry", tmp_path / "a.csv", realism=realism, progress=False)
    b = run_ablation(pipe, faces, ["a", "b"], cs, "angry", tmp_path / "b.csv", realism=realism, progress=False)
    assert [r["target_prob"] for r in a] == [r["target_prob"] for r in b]


def test_realism_separates_toy_faces_from_noise(realism):
    """MTCNN was trained on photographs: it finds most toy faces (about 70% of them), never noise."""
    from emosmc.labels import EMOTIONS

    faces = images_to_tensor(torch.stack([torch.from_numpy(render(sample_identity(300 + i), EMOTIONS[i % 7]))
                                          for i in range(28)]))
    noise = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert realism(noise).max() == 0.0
    r = realism(faces)
    assert r.mean() > 0.5 and (r > 0.5).float().mean() > 0.5


SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celebahq-samples" / "256"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"real CelebA-HQ samples not present at {SAMPLES}")
def test_realism_on_real_celebahq_photos(realism):
    from emosmc.data import ImageFolderDataset

    ds = ImageFolderDataset(SAMPLES, 256)
    x = torch.stack([ds[i] for i in range(len(ds))])
    r = realism(x)
    assert len(r) >= 50 and r.min() > 0.9 and r.mean() > 0.99
    assert realism(torch.rand(4, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1).max() == 0.0


def test_a_new_kaggle_session_continues_the_csv_of_the_previous_one(tmp_path):
    from emosmc.ablation import continue_from_previous

    prev = tmp_path / "input" / "emosmc-05-ablations" / "ablation-celebahq.csv"
    prev.parent.mkdir(parents=True)
    prev.write_text("config,swept,image,target,target_prob,realism,judge_prob,seconds,unet_evals,decodes\n"
                    '"{""guidance_scale"": 5.0}",guidance_scale,a,happy,0.5,0.9,,1.0,10,10\n')
    work = tmp_path / "working" / "ablation-celebahq.csv"
    assert continue_from_previous(work, inputs=tmp_path / "none") is None and not work.exists()
    assert continue_from_previous(work, inputs=tmp_path / "input") == prev
    assert read_rows(work)[0]["guidance_scale"] == 5.0
    work.write_text(work.read_text() + '"{""guidance_scale"": 9.0}",guidance_scale,a,happy,0.7,0.9,,1.0,10,10\n')
    assert continue_from_previous(work, inputs=tmp_path / "input") == work and len(read_rows(work)) == 2


def test_a_config_is_the_same_whether_its_defaults_are_written_out_or_not(tmp_path):
    from emosmc.ablation import config_key, read_rows
    from emosmc.edit_config import EditConfig

    short = {"num_particles": 8, "scorer": "latent", "swept": "num_particles"}
    full = {**EditConfig().to_dict(), **short}
    assert config_key(short) == config_key(full) == '{"num_particles": 8, "scorer": "latent", "swept": "num_particles"}'
    path = tmp_path / "a.csv"
    path.write_text('config,swept,image,target_prob\n"{""resample_interval"": 1, ""swept"": ""resample_interval""}",'
                    'resample_interval,face0,0.5\n')
    row = read_rows(path)[0]  # a default left out of the key comes back when read
    assert row["resample_interval"] == 1 and row["num_particles"] == 20 and row["scorer"] == "pixel"


def test_methods_run_through_the_ablation_runner_at_equal_unet_evaluations(pipe, realism, faces, tmp_path):
    """The Kaggle comparison: every method at a budget, labelled, with an identity score per image."""
    from emosmc.baselines import method_configs

    from emosmc.edit_config import EditConfig

    base = EditConfig().replace(**BASE, scorer="pixel")
    cs = method_configs(base, ["unguided", "best-of-n", "smc-paper-pixel", "guided-smc"], budgets=(2,))
    assert [c["method"] for c in cs] == ["unguided@1", "best-of-n@2", "smc-paper-pixel@2", "guided-smc@2"]
    cs = [c for c in cs if c["method"] != "guided-smc@2"]  # (the test pipe has no latent scorer)
    calls = []

    def identity(src, edits, identities):
        assert identities is None  # (no identities given: the measure gets none)
        calls.append(len(src))
        return -(src - edits).abs().flatten(1).mean(1)

    rows = run_ablation(pipe, faces, ["a", "b"], cs, "happy", tmp_path / "m.csv", realism=realism, identity=identity,
                        progress=False)
    s = {r["method"]: r for r in summarise(rows, "method")}
    assert set(s) == {"unguided@1", "best-of-n@2", "smc-paper-pixel@2"} and calls == [2, 2, 2]
    assert s["unguided@1"]["unet_evals"] == 1 * 10 and s["best-of-n@2"]["unet_evals"] == s["smc-paper-pixel@2"]["unet_evals"] == 2 * 10
    assert all(r["identity"] < 0 for r in rows)


def test_an_old_csv_without_the_identity_column_is_upgraded(pipe, realism, faces, tmp_path):
    import csv

    old = ["config", "swept", "image", "target", "target_prob", "realism", "judge_prob", "seconds", "unet_evals",
           "decodes", "true_flip"]
    path = tmp_path / "old.csv"
    cs = one_at_a_time(BASE, guidance_scale=[0.0])
    rows = run_ablation(pipe, faces, ["a", "b"], cs, "happy", path, realism=realism, progress=False)
    with open(path, newline="") as f:
        kept = list(csv.DictReader(f))
    with open(path, "w", newline="") as f:  # as a kernel version before the column wrote it
        w = csv.DictWriter(f, old, extrasaction="ignore")
        w.writeheader()
        w.writerows(kept)
    cs2 = one_at_a_time(BASE, guidance_scale=[0.0, 5.0])
    rows2 = run_ablation(pipe, faces, ["a", "b"], cs2, "happy", path, realism=realism, identity=lambda a, b, ids: torch.ones(len(a)),
                         progress=False)
    assert len(rows2) == 4 and [r["target_prob"] for r in rows2[:2]] == [r["target_prob"] for r in rows]
    assert all(math.isnan(r["identity"]) for r in rows2[:2]) and all(r["identity"] == 1 for r in rows2[2:])


def test_rows_of_other_model_weights_are_set_aside_not_reused(pipe, realism, faces, tmp_path, capsys):
    """A CSV made before the models were retrained holds their results, not these models': it is renamed (kept),
    said, and the sweep runs again; the same weights resume as before."""
    import copy

    path = tmp_path / "ablation-toy.csv"
    cs = one_at_a_time(BASE, guidance_scale=[0.0])
    first = run_ablation(pipe, faces, ["a", "b"], cs, "happy", path, realism=realism, progress=False)
    assert len(run_ablation(pipe, faces, ["a", "b"], cs, "happy", path, realism=realism, progress=False)) == 2
    assert "other model weights" not in capsys.readouterr().out
    retrained = copy.deepcopy(pipe)
    with torch.no_grad():
        next(retrained.unet.parameters()).add_(0.01)
    counting = Counting(retrained)
    rows = run_ablation(counting, faces, ["a", "b"], cs, "happy", path, realism=realism, progress=False)
    assert counting.calls == [(2, 0.0)] and len(rows) == 2  # run again, not read back
    said = capsys.readouterr().out
    assert "ablation-toy.csv was made with other model weights" in said
    (aside,) = tmp_path.glob("ablation-toy.models-*.csv")
    assert aside.name in said and [r["target_prob"] for r in read_rows(aside)] == [r["target_prob"] for r in first]


def test_a_benchmarks_own_measures_become_columns_without_replacing_the_runners(pipe, realism, faces, tmp_path):
    seen = []

    def measures(c, out, ev, idx):
        seen.append((c["swept"], list(idx)))
        return {"batch_size": [len(idx)] * len(idx), "identity": [-1.0] * len(idx)}

    path = tmp_path / "m.csv"
    rows = run_ablation(pipe, faces, ["a", "b"], one_at_a_time(BASE, guidance_scale=[5.0]), "happy", path,
                        realism=realism, identity=lambda a, b, ids: torch.full((len(a),), 7.0), progress=False,
                        measures=measures, columns=["batch_size", "batch_size", "identity"])
    assert seen == [("guidance_scale", [0, 1])]
    assert path.read_text().splitlines()[0].split(",").count("batch_size") == 1
    assert [r["batch_size"] for r in rows] == ["2", "2"] and [r["identity"] for r in rows] == [7.0, 7.0]


def test_weights_fingerprint_reads_every_kind_of_tensor_and_sees_a_change():
    from emosmc.tracking import weights_fingerprint

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).half()  # fp16 weights, int64 buffer
    a = weights_fingerprint(net, None, "not a module")
    assert len(a) == 12 and a == weights_fingerprint(net)
    with torch.no_grad():
        net[0].bias[0] += 1
    assert weights_fingerprint(net) != a and weights_fingerprint(None) is None
