"""kaggle/push.py: kernel folders the Kaggle CLI accepts, and a simulated Kaggle run of 01 and 04."""
import json
import os
import shutil
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


def _run(nb_path, cwd, env):
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    old = dict(os.environ)
    os.environ.pop("EMOSMC_WORK", None)  # the notebooks must find /kaggle/working by themselves
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    return nb


def test_simulated_kaggle_run_of_01_then_04_finds_inputs_and_writes_outputs(tmp_path):
    """/kaggle/input and /kaggle/working laid out in a temp folder; the kernels run in the toy profile."""
    folders, _ = push.build(tmp_path / "build", "alice", profile="toy", only=["01", "04"], wheel=False)
    inp, work = tmp_path / "input", tmp_path / "working"
    inp.mkdir()
    work.mkdir()
    env = {"EMOSMC_KAGGLE_INPUT": str(inp), "EMOSMC_KAGGLE_WORKING": str(work), "WANDB_MODE": "offline",
           "MPLBACKEND": "Agg"}
    _run(folders["01_vae_encode"] / "01_vae_encode.ipynb", work, env)
    manifest = json.loads((work / "latents-toy" / "manifest.json").read_text())
    assert len(manifest["files"]) == 283 and len(manifest["skipped"]) == 3
    # Kaggle mounts kernel 01's output read-only for the next kernel: the cache is found there
    shutil.copytree(work, inp / "emosmc-01-vae-encode")
    from emosmc.latents import find_cache

    assert find_cache("latents-toy", tmp_path / "fresh-working", inputs=inp) == inp / "emosmc-01-vae-encode" / "latents-toy"
    nb = _run(folders["04_smc_inference"] / "04_smc_inference.ipynb", work, env)
    assert (work / "cli_surprise.png").exists()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "profile toy" in text and "counterfactuals in" in text
