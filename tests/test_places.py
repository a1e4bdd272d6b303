"""Where things are found: Kaggle's classic and 2026 input layouts, kagglehub's versions/N copies,
the install cell's wheel search, and scores that extend a read-only cache."""
import sys
from pathlib import Path

import pytest
import torch

from emosmc import places
from emosmc.places import (InputNotFound, find_celebahq_images, find_latent_scorer, find_run_folders,
                           find_trained_unet, search_inputs)

ROOT = Path(__file__).resolve().parents[1]
LAYOUTS = {  # where Kaggle mounts a dataset / a notebook's output, in each layout
    "classic": ("celebahq-resized-256x256", "emosmc-02-train-unet"),
    "2026": ("datasets/badasstechie/celebahq-resized-256x256", "notebooks/alice/emosmc-02-train-unet"),
    "kagglehub": ("datasets/badasstechie/celebahq-resized-256x256/versions/3",
                  "notebooks/alice/emosmc-02-train-unet/versions/7"),
}


def _mount(inp: Path, layout: str):
    data, kernel = LAYOUTS[layout]
    imgs = inp / data / "celeba_hq_256"
    imgs.mkdir(parents=True)
    for i in range(12):
        (imgs / f"{i:05d}.jpg").write_bytes(b"x")
    # where kernel 02 leaves its models: raw weights in each checkpoint, the EMA model when finished
    for d in ("unet-run-celebahq/checkpoint-4/unet", "unet-run-celebahq/unet", "latent_scorer"):
        (inp / kernel / d).mkdir(parents=True)
        (inp / kernel / d / "config.json").write_text("{}")
    (inp / kernel / "ablation-celebahq.csv").write_text("a\n")
    return inp / data / "celeba_hq_256", inp / kernel


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_finder_works_in_every_mount_layout(layout, tmp_path, monkeypatch):
    inp = tmp_path / "input"
    images, kernel = _mount(inp, layout)
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(inp))
    monkeypatch.delenv("EMOSMC_CELEBAHQ_IMAGES", raising=False)
    assert find_celebahq_images() == images
    assert find_trained_unet(tmp_path / "empty-work") == kernel / "unet-run-celebahq" / "unet"
    assert find_latent_scorer() == kernel / "latent_scorer"
    assert find_run_folders("unet-run-celebahq") == [kernel / "unet-run-celebahq"]
    assert search_inputs("ablation-celebahq.csv", want=Path.is_file) == [kernel / "ablation-celebahq.csv"]


def test_an_unfinished_training_run_is_not_a_trained_unet_and_the_newest_version_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path))
    run = tmp_path / "notebooks/alice/emosmc-02-train-unet/versions"
    (run / "2/unet-run-celebahq/checkpoint-8000/unet").mkdir(parents=True)
    (run / "2/unet-run-celebahq/checkpoint-8000/unet/config.json").write_text("{}")
    assert find_trained_unet() is None  # raw checkpoint weights, not the EMA model
    assert find_run_folders("unet-run-celebahq") == [run / "2/unet-run-celebahq"]
    for v in ("2", "10", "9"):
        (run / v / "unet-run-celebahq/unet").mkdir(parents=True, exist_ok=True)
        (run / v / "unet-run-celebahq/unet/config.json").write_text("{}")
    assert find_trained_unet() == run / "10/unet-run-celebahq/unet"


def test_search_is_shallowest_first_bounded_and_skips_what_is_not_wanted(tmp_path):
    for d in ("a/b/c/d/e/f/g/unet", "z/unet", "y/x/unet", "w/unet"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "y/x/unet/config.json").write_text("{}")
    assert search_inputs("unet", tmp_path) == [tmp_path / "w/unet", tmp_path / "z/unet", tmp_path / "y/x/unet"]
    assert search_inputs("unet", tmp_path, want=lambda p: (p / "config.json").exists()) == [tmp_path / "y/x/unet"]
    assert search_inputs("unet", tmp_path / "missing") == []


def test_nothing_found_says_what_is_mounted(tmp_path):
    (tmp_path / "datasets" / "bob" / "some-data").mkdir(parents=True)
    err = InputNotFound("the latent cache latents-celebahq", "Attach kernel 01's output.", tmp_path)
    text = str(err)
    assert "latents-celebahq was not found" in text and "Attach kernel 01" in text
    assert "datasets/" in text and "    bob/" in text and "      some-data/" in text
    assert "does not exist" in str(InputNotFound("x", inputs=tmp_path / "nowhere"))


def _install_cell(user="alice"):
    sys.path.insert(0, str(ROOT / "kaggle"))
    import push

    return push.INSTALL_CELL.format(user=user, lib=push.LIB)


@pytest.mark.parametrize("where", ["emosmc-lib", "datasets/alice/emosmc-lib", "datasets/alice/emosmc-lib/versions/2"])
def test_the_install_cell_finds_the_wheel_in_any_layout(where, tmp_path, monkeypatch):
    import importlib.util
    import subprocess

    (tmp_path / where).mkdir(parents=True)
    for v in ("0.3.0", "0.10.1", "0.9.0"):
        (tmp_path / where / f"emosmc-{v}-py3-none-any.whl").write_bytes(b"")
    calls = []
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0, "", ""))
    exec(_install_cell(), {})
    assert str(tmp_path / where / "emosmc-0.10.1-py3-none-any.whl") in calls[0]  # the newest


def test_the_install_cell_without_a_wheel_lists_what_is_mounted(tmp_path, monkeypatch):
    import importlib.util

    (tmp_path / "datasets" / "badasstechie" / "celebahq-resized-256x256").mkdir(parents=True)
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RuntimeError, match=r"add the dataset alice/emosmc-lib.*datasets/badasstechie"):
        exec(_install_cell(), {})


def test_scores_of_a_read_only_cache_go_to_the_work_folder_and_are_found_later(tmp_path, monkeypatch):
    from emosmc.latents import LatentCache

    cache_dir = tmp_path / "input" / "emosmc-01-vae-encode" / "latents-celebahq"
    cache_dir.mkdir(parents=True)
    cache = LatentCache(cache_dir, {"files": ["a.jpg", "b.jpg"], "shards": []})
    monkeypatch.setenv("EMOSMC_WORK", str(tmp_path / "working"))
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path / "input"))
    probs = torch.rand(2, 7)
    path = cache.save_scores("scores-x", {"probs": probs})
    assert path == tmp_path / "working" / "latents-celebahq" / "scores-x.safetensors"
    assert not list(cache_dir.iterdir())
    torch.testing.assert_close(cache.load_scores("scores-x")["probs"], probs)
    # a later kernel: 03's output is mounted among the inputs, its own work folder is empty
    (tmp_path / "working").rename(tmp_path / "input" / "emosmc-03-classifier-scoring")
    monkeypatch.setenv("EMOSMC_WORK", str(tmp_path / "working-04"))
    torch.testing.assert_close(cache.load_scores("scores-x")["probs"], probs)
    with pytest.raises(FileNotFoundError, match="no scores 'scores-y'.*03_classifier_scoring"):
        cache.load_scores("scores-y")


def test_is_writable_tries_for_real_and_never_under_the_inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path / "input"))
    (tmp_path / "input" / "kernel-01").mkdir(parents=True)
    assert places.is_writable(tmp_path) and not places.is_writable(tmp_path / "missing")
    assert not places.is_writable(tmp_path / "input" / "kernel-01")  # root could write there; Kaggle could not
