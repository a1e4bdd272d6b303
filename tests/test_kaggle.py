"""kaggle/push.py: kernel folders the Kaggle CLI accepts; kaggle/simulate.py: every kernel run with stand-in models."""
import json
import os
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "kaggle"))
import push  # noqa: E402

REQUIRED = {"id", "title", "code_file", "language", "kernel_type"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("kaggle")
    folders, lib = push.build(out, "alice", wheel=False)
    return out, folders, lib


def test_every_kernel_has_consistent_metadata_and_a_runnable_notebook(built):
    out, folders, _ = built
    assert list(folders) == ["01_vae_encode", "02_train_unet", "03_classifier_scoring", "04_smc_inference",
                             "05_ablations"]
    ids = []
    for stem, d in folders.items():
        meta = json.loads((d / "kernel-metadata.json").read_text())
        assert REQUIRED <= set(meta), stem
        user, slug = meta["id"].split("/")
        assert user == "alice" and slug == push.slugify(meta["title"]) == d.name
        assert meta["language"] == "python" and meta["kernel_type"] == "notebook"
        assert meta["enable_gpu"] and meta["enable_internet"] and meta["machine_shape"] == "NvidiaTeslaT4"
        assert meta["dataset_sources"] == ["badasstechie/celebahq-resized-256x256", "alice/emosmc-lib"]
        assert all(s in ids for s in meta["kernel_sources"]), f"{stem} reads a kernel that runs later"
        ids.append(meta["id"])
        nb = nbformat.read(d / meta["code_file"], as_version=4)
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert "kaggle-install" in nb.cells[0].metadata["tags"] and "alice/emosmc-lib" in nb.cells[0].source
        params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(params) == 1 and 'PROFILE = "celebahq"' in params[0].source
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    chain = {s: json.loads((d / "kernel-metadata.json").read_text())["kernel_sources"] for s, d in folders.items()}
    assert chain["02_train_unet"] == ["alice/emosmc-01-vae-encode"]
    assert chain["04_smc_inference"] == ["alice/emosmc-02-train-unet", "alice/emosmc-03-classifier-scoring"]


def test_resume_adds_the_kernels_own_output_for_training_and_ablations():
    assert push.metadata("bob", "02_train_unet", resume=True)["kernel_sources"][-1] == "bob/emosmc-02-train-unet"
    assert push.metadata("bob", "05_ablations", resume=True)["kernel_sources"][-1] == "bob/emosmc-05-ablations"
    assert push.metadata("bob", "03_classifier_scoring", resume=True)["kernel_sources"][-1] == "bob/emosmc-03-classifier-scoring"
    assert "bob/emosmc-04-smc-inference" not in push.metadata("bob", "04_smc_inference", resume=True)["kernel_sources"]


def test_dry_run_builds_the_library_wheel_and_calls_nothing(tmp_path, capsys):
    push.main(["--user", "alice", "--out", str(tmp_path), "--dry-run", "--lib"])
    text = capsys.readouterr().out
    assert "$ kaggle datasets create -p" in text and text.count("$ kaggle kernels push") == 5
    assert "--accelerator NvidiaTeslaT4" in text
    meta = json.loads((tmp_path / "emosmc-lib" / "dataset-metadata.json").read_text())
    assert meta["id"] == "alice/emosmc-lib"
    wheel = next((tmp_path / "emosmc-lib").glob("emosmc-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "emosmc/pipeline.py" in names and "emosmc/assets/toy/unet/diffusion_pytorch_model.safetensors" in names
    assert "emosmc/toy/faces.py" in names and "emosmc/toy.py" not in names  # nothing stale from an old build
    assert not any(n.endswith(".pyc") for n in names)


def test_the_install_cell_says_what_pip_could_not_install_and_why(tmp_path, monkeypatch):
    """The kernels' first cell on a Kaggle without internet (here: a wheel pip refuses, no index reachable)."""
    import importlib.util

    (tmp_path / "datasets" / "alice" / "emosmc-lib").mkdir(parents=True)
    (tmp_path / "datasets" / "alice" / "emosmc-lib" / "emosmc-0.0.0-py3-none-any.whl").write_bytes(b"not a wheel")
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "emosmc" else find_spec(name, *a))
    with pytest.raises(RuntimeError, match=r"pip could not install .*emosmc-0.0.0-py3-none-any.whl.*internet on.*pip said"):
        exec(push.INSTALL_CELL.format(user="alice", lib=push.LIB), {})


def test_wandb_with_a_key_but_no_internet_logs_offline_and_says_so(tmp_path, monkeypatch, capsys):
    """Kernel 02 with the WANDB_API_KEY secret attached but no internet: training goes on, logged offline."""
    import wandb

    from emosmc.tracking import wandb_logger

    modes = []

    def init(mode, **kw):
        modes.append(mode)
        if mode == "online":
            raise wandb.errors.CommError("Network error (ConnectionError), entering retry loop")
        return type("Run", (), {"log": lambda self, d, step: None})()

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setattr(wandb, "init", init)
    log = wandb_logger("emosmc", dir=str(tmp_path / "wandb-run"))
    log({"loss": 1.0}, 0)
    assert modes == ["online", "offline"]
    assert "W&B could not go online (CommError" in capsys.readouterr().out


def test_stand_in_kaggle_run_of_every_kernel_in_both_mount_layouts(tmp_path):
    """kaggle/simulate.py: kernels 01, 02, 02 resumed (classic layout), 03, 04, 05 in the celebahq profile with stand-in
    models under the real hub ids, inputs mounted read-only (classic and 2026 layouts, run side by side),
    no internet, and only sizes set in the parameters cells: every sweep, method and setting is the
    kernel's default, as a user's first run gets it. The 2026 run has no FaceNet weights to be had."""
    import csv
    import subprocess

    # the classic layout with a read-only bind mount where the machine allows one and the stand-in FaceNet
    # checkpoint; the 2026 layout with chmod and before/after snapshots (what a machine without mount
    # namespaces falls back to) and no FaceNet weights at all
    runs = {lay: subprocess.Popen([sys.executable, str(ROOT / "kaggle" / "simulate.py"), "--out", str(tmp_path / lay),
                                   "--layout", lay] + extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": "1"})
            for lay, extra in (("classic", []), ("2026", ["--no-namespace", "--no-facenet", "--skip", "02_train_unet@resume"]))}
    for lay, proc in runs.items():
        out, err = proc.communicate(timeout=900)
        report = json.loads((tmp_path / lay / "report.json").read_text())
        rows = {r["kernel"]: r for r in report[lay]}
        assert proc.returncode == 0 and report["ok"], f"{lay}: {out[-2000:]}\n{err[-3000:]}"
        resumed = ["02_train_unet@resume"] if lay == "classic" else []  # resuming reads no inputs: once is enough
        assert list(rows) == ["01_vae_encode", "02_train_unet", *resumed, "03_classifier_scoring",
                              "04_smc_inference", "05_ablations"]
        assert all(r["cells_run"] == r["cells"] > 5 for r in rows.values())
        assert all("snapshot" in r["read_only"] for r in rows.values())
        # sizes only: images, steps, particles and budgets; no sweep, method list or scorer
        assert set(report["parameters"]["05_ablations"]) == {"N_IMAGES", "BASE", "BUDGETS"}
        assert set(report["parameters"]["05_ablations"]["BASE"]) == {"num_particles", "num_inference_steps"}
        assert set(report["parameters"]["04_smc_inference"]["OVERRIDES"]) == {"num_particles", "num_inference_steps"}
        assert "profile: celebahq" in rows["01_vae_encode"]["text"]
        assert "reached step 2" in rows["02_train_unet"]["text"]
        if resumed:
            assert "checkpoint-2" in rows["02_train_unet@resume"]["text"] and "reached step 3" in rows["02_train_unet@resume"]["text"]
        assert "latents-celebahq" in rows["03_classifier_scoring"]["wrote"]  # the scores, in its own output
        assert (tmp_path / lay / "outputs" / lay / "emosmc-03-classifier-scoring" / "latents-celebahq").is_dir()
        assert "(celebahq profile)" in rows["04_smc_inference"]["text"]
        ablation = rows["05_ablations"]
        # each sweep's CSV with the record of the models that made it (a later version continues only from its own)
        assert ablation["wrote"] == ["ablation-celebahq.csv", "ablation-celebahq.csv.models", "methods-celebahq.csv",
                                     "methods-celebahq.csv.models"]
        assert "guided-smc@2" in ablation["text"] and "unguided@1" in ablation["text"]
        assert "smc-difference-pixel@2" in ablation["text"]  # the default methods: every one of emosmc.baselines
        assert "guidance 0 (best of " in ablation["text"]  # answer 1: the celebahq sweep holds gamma = 0
        with open(tmp_path / lay / "outputs" / lay / "emosmc-05-ablations" / "methods-celebahq.csv", newline="") as f:
            identity = [r["identity"] for r in csv.DictReader(f)]
        if lay == "classic":  # the stand-in FaceNet checkpoint in facenet-pytorch's cache
            assert identity and all(identity) and "no identity measure" not in ablation["text"]
        else:  # no weights, no internet: section 5 finishes with an empty identity column and says how to fix it
            assert report["facenet"].startswith("none") and identity and not any(identity)
            assert "no identity measure" in ablation["text"] and "20180402-114759-vggface2.pt" in ablation["text"]
            assert "Kaggle dataset" in ablation["text"]
