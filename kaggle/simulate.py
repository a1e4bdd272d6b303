"""A simulated Kaggle run of the five kernels with stand-in models: what a first real run would hit.

    python kaggle/simulate.py --out /tmp/kaggle-sim                      # tiny models (seconds per kernel)
    python kaggle/simulate.py --out /tmp/kaggle-sim --no-facenet         # and no FaceNet weights to be had
    python kaggle/simulate.py --out /tmp/kaggle-check --size real        # real model sizes (make kaggle-check)

What it does, as Kaggle would:
- builds the kernels with ``push.build`` (the ``celebahq`` profile, each parameters cell given only sizes --
  images, steps, particles, training steps, batches, the stand-in models' widths -- as a user's first run
  would: every sweep, method and setting stays the kernel's default, see :data:`SIZES`);
- writes a stand-in Hugging Face cache: random-weight models saved under the exact ids
  ``stabilityai/sd-vae-ft-ema`` and ``dima806/facial_emotions_image_detection`` with the real config
  keys, dima806's label order and a ViT image processor (224 px, mean = std = 0.5), tiny or at real
  size; kernels load them with ``HF_HUB_OFFLINE=1``; and a random-weight FaceNet checkpoint where
  facenet-pytorch caches its download -- none with ``--no-facenet``, where kernel 05 must finish without
  FaceNet (its identity column empty, a message saying how to attach the weights);
- no internet: HTTP(S) proxies point at a closed local port, so any download fails at once, as offline;
- mounts ``/kaggle/input`` (a folder, path given by ``$EMOSMC_KAGGLE_INPUT``) **read-only** in the
  classic layout (``<slug>/``) or the 2026 one (``datasets/<owner>/<slug>/``,
  ``notebooks/<owner>/<slug>/``) with only what the kernel's metadata attaches, and an empty
  ``/kaggle/working``; runs 01, 02, 02 again with ``--resume`` (its own output attached), 03, 04, 05
  with nbclient; each kernel's working folder becomes the output the later ones attach.
- Read-only: as root, a read-only bind mount in a private mount namespace (``unshare -m``) when the
  machine allows one; always, a snapshot of the inputs before and after each kernel (any file
  added, changed or removed fails the run).

It proves the kernels' code paths (finders, loading by hub id, file layouts, resume, parameters)
with models of the real classes; it proves nothing about GPU memory, speed or result quality.
Writes ``report.json`` in ``--out``: per kernel and layout, cells, seconds, files written.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import push  # noqa: E402

USER = "sim"
VAE_ID, CLASSIFIER_ID = "stabilityai/sd-vae-ft-ema", "dima806/facial_emotions_image_detection"
TINY_UNET = dict(block_out_channels=(8, 8, 16, 16, 32, 32), layers_per_block=1, norm_num_groups=8, attention_head_dim=8)
ORDER = ["01_vae_encode", "02_train_unet", "02_train_unet@resume", "03_classifier_scoring", "04_smc_inference",
         "05_ablations"]


# The only parameters the check sets: how much work (images, steps, particles, training steps, batches) and,
# for --size tiny, the widths of the models it trains. Sweeps, methods, scorers and every other setting stay
# each kernel's defaults, so the run is the one a user gets. A steering dict (04's OVERRIDES, 05's BASE) may
# hold only STEER_SIZES.
SIZES = {"BATCH_SIZE", "SHARD_SIZE", "MAX_STEPS", "CHECKPOINT_EVERY", "SAMPLE_EVERY", "NUM_SAMPLES", "SAMPLE_STEPS",
         "DECODE_BATCH", "NOISY_SUBSET", "LATENT_SCORER_STEPS", "DISTILL_BATCH", "N_FACES", "N_IMAGES", "BUDGETS",
         "OVERRIDES", "BASE", "UNET_CONFIG", "SCORER_CHANNELS"}
STEER_SIZES = {"num_particles", "num_inference_steps"}


def parameters(size: str) -> dict:
    """Every kernel's workload shrunk through its parameters cell: sizes only (:data:`SIZES`)."""
    steer = {"num_particles": 2, "num_inference_steps": 10}  # 10 x 0.23 strength: 2 reverse steps (0.2 in 05)
    p = {
        "01_vae_encode": {"BATCH_SIZE": 4, "SHARD_SIZE": 8},
        "02_train_unet": {"MAX_STEPS": 2, "BATCH_SIZE": 2, "CHECKPOINT_EVERY": 1, "SAMPLE_EVERY": 2,
                          "NUM_SAMPLES": 2, "SAMPLE_STEPS": 2},
        "03_classifier_scoring": {"BATCH_SIZE": 4, "DECODE_BATCH": 4, "NOISY_SUBSET": 2, "LATENT_SCORER_STEPS": 2,
                                  "DISTILL_BATCH": 2},
        "04_smc_inference": {"N_FACES": 1, "OVERRIDES": dict(steer)},
        "05_ablations": {"N_IMAGES": 1, "BASE": dict(steer), "BUDGETS": [2]},
    }
    if size == "tiny":
        p["02_train_unet"]["UNET_CONFIG"] = TINY_UNET
        p["03_classifier_scoring"]["SCORER_CHANNELS"] = (8, 16, 32)
    p["02_train_unet@resume"] = {**p["02_train_unet"], "MAX_STEPS": 3}
    for key, params in p.items():
        extra = set(params) - SIZES
        extra |= {f"{k}[{s!r}]" for k in ("OVERRIDES", "BASE") for s in set(params.get(k, {})) - STEER_SIZES}
        if extra:
            raise ValueError(f"{key}: the check sets only sizes, not {sorted(extra)}")
    return p


# -- stand-in models -------------------------------------------------------------------------------
def stand_in_hub(hf_home: Path, size: str, facenet: bool = True) -> dict:
    """Random-weight models of the real classes saved under the real ids in a Hugging Face cache, and
    (``facenet``) a FaceNet checkpoint in facenet-pytorch's cache."""
    import torch
    from diffusers import AutoencoderKL
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    from emosmc.labels import DIMA806_ID2LABEL
    from emosmc.profiles import sd_vae_config

    torch.manual_seed(0)
    vae_cfg = sd_vae_config()
    if size == "tiny":
        vae_cfg.update(block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4)
    vit = dict(num_labels=7, id2label=dict(DIMA806_ID2LABEL), label2id={v: k for k, v in DIMA806_ID2LABEL.items()},
               image_size=224, patch_size=16)
    if size == "tiny":
        vit.update(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37)
    models = {VAE_ID: AutoencoderKL(**vae_cfg), CLASSIFIER_ID: ViTForImageClassification(ViTConfig(**vit))}
    sizes = {}
    for repo_id, model in models.items():
        folder = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
        rev = "0" * 40
        snap = folder / "snapshots" / rev
        shutil.rmtree(folder, ignore_errors=True)
        model.save_pretrained(snap)
        if repo_id == CLASSIFIER_ID:
            ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3,
                              image_std=[0.5] * 3).save_pretrained(snap)
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(rev)
        sizes[repo_id] = round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    if not facenet:
        return sizes
    # FaceNet's weights where facenet-pytorch caches its download (TORCH_HOME/checkpoints), same keys
    from facenet_pytorch import InceptionResnetV1

    ckpt = hf_home.parent / "torch" / "checkpoints" / "20180402-114759-vggface2.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    facenet = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631)  # with the logits the file has
    torch.save(facenet.state_dict(), ckpt)
    sizes["facenet-pytorch vggface2"] = round(sum(p.numel() for p in facenet.parameters()) / 1e6, 2)
    return sizes


def stand_in_photos(folder: Path, n: int, photos: Path = None) -> int:
    """CelebA-HQ's layout (``celeba_hq_256/NNNNN.jpg``): real sample photos when given, else toy faces
    at 256 px; plus one unreadable file, as real datasets have."""
    import numpy as np
    from PIL import Image

    from emosmc.labels import EMOTIONS
    from emosmc.toy.faces import render, sample_identity

    d = folder / "celeba_hq_256"
    d.mkdir(parents=True)
    if photos and not Path(photos).is_dir():
        print(f"note: {photos} is not a folder; using toy faces at 256 px as the photos", file=sys.stderr)
    if photos and Path(photos).is_dir():
        files = sorted(p for p in Path(photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
        if len(files) < 8:
            raise SystemExit(f"{photos} holds {len(files)} photos; the kernels need at least 8")
        for i, f in enumerate(files):
            Image.open(f).convert("RGB").resize((256, 256)).save(d / f"{i:05d}.jpg")
        count = len(files)
    else:
        rng = np.random.default_rng(5)
        for i in range(n):
            Image.fromarray(render(sample_identity(rng), EMOTIONS[i % 7], 256)).save(d / f"{i:05d}.jpg")
        count = n
    (d / f"{count:05d}.jpg").write_bytes(b"not a jpeg")
    return count


# -- the read-only mount ---------------------------------------------------------------------------
def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


class ReadOnly:
    """Inputs read-only while a kernel runs: a read-only bind mount when possible, else ``chmod``;
    a before/after snapshot in both cases."""

    def __init__(self, root: Path, namespace: bool):
        self.root, self.namespace = root, namespace

    def __enter__(self):
        self.before = _snapshot(self.root)
        self.method = "chmod + snapshot"
        if self.namespace and subprocess.run(["mount", "--bind", str(self.root), str(self.root)]).returncode == 0:
            if subprocess.run(["mount", "-o", "remount,bind,ro", str(self.root)]).returncode == 0:
                self.method = "read-only bind mount + snapshot"
            else:
                subprocess.run(["umount", str(self.root)])
        if self.method.startswith("chmod"):
            subprocess.run(["chmod", "-R", "a-w", str(self.root)], check=True)
        return self

    def __exit__(self, *exc):
        if self.method.startswith("read-only"):
            subprocess.run(["umount", str(self.root)], check=True)
        else:
            subprocess.run(["chmod", "-R", "u+w", str(self.root)], check=True)
        after = _snapshot(self.root)
        changed = sorted(k for k in set(self.before) | set(after) if self.before.get(k) != after.get(k))
        if changed and exc[0] is None:
            raise RuntimeError(f"a kernel wrote under its inputs ({self.root}): {changed[:10]}")
        return False


# -- layouts ---------------------------------------------------------------------------------------
def mount_path(layout: str, kind: str, owner: str, slug: str) -> str:
    """Where Kaggle mounts a dataset (``kind="datasets"``) or a notebook's output (``"notebooks"``)."""
    return slug if layout == "classic" else f"{kind}/{owner}/{slug}"


def lay_out_inputs(inp: Path, layout: str, meta: dict, dataset: Path, lib: Path, outputs: dict):
    shutil.rmtree(inp, ignore_errors=True)
    inp.mkdir(parents=True)
    for ref, src in [(push.DATASET, dataset), (f"{USER}/{push.LIB}", lib)]:
        owner, slug = ref.split("/")
        shutil.copytree(src, inp / mount_path(layout, "datasets", owner, slug), copy_function=os.link)
    for ref in meta["kernel_sources"]:
        owner, slug = ref.split("/")
        if slug not in outputs:
            raise RuntimeError(f"{meta['id']} attaches {ref}, which has not run")
        shutil.copytree(outputs[slug], inp / mount_path(layout, "notebooks", owner, slug), copy_function=os.link)


# no internet: every HTTP(S) request goes to a closed local port and fails at once (local traffic is direct)
NO_INTERNET = {k: "http://127.0.0.1:9" for k in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")}
NO_INTERNET.update(NO_PROXY="localhost,127.0.0.1", no_proxy="localhost,127.0.0.1")


def run_kernel(nb_path: Path, work: Path, env: dict, timeout: int) -> dict:
    from nbclient import NotebookClient

    nb = nbformat.read(nb_path, as_version=4)
    old = dict(os.environ)
    for k in ("EMOSMC_WORK", "EMOSMC_CELEBAHQ", "EMOSMC_CELEBAHQ_IMAGES", "EMOSMC_TOY_ASSETS"):
        os.environ.pop(k, None)
    os.environ.update(env)
    t0 = time.time()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(work)}}).execute()
        error = None
    except Exception as err:  # the report names the failing cell
        error = re.sub(r"\x1b\[[0-9;]*m", "", f"{type(err).__name__}: {err}")[-1500:]
    finally:
        os.environ.clear()
        os.environ.update(old)
    nbformat.write(nb, nb_path.with_name(nb_path.stem + ".executed.ipynb"))
    code = [c for c in nb.cells if c.cell_type == "code"]
    ran = [c for c in code if c.get("execution_count")]
    return {"cells": len(code), "cells_run": len(ran), "seconds": round(time.time() - t0, 1), "error": error,
            "text": "".join(o.get("text", "") for c in code for o in c.get("outputs", []))[-20000:]}


def simulate(out: Path, layouts=("classic", "2026"), size: str = "tiny", photos=None, n_photos: int = 12,
             timeout: int = 900, namespace: bool = False, facenet: bool = True, skip=()) -> dict:
    out = Path(out).resolve()  # the kernels run in their own working folder
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    report = {"size": size, "facenet": "stand-in checkpoint" if facenet else "none (and no internet)",
              "stand_in_parameters_millions": stand_in_hub(out / "hf", size, facenet)}
    report["parameters"] = params = parameters(size)
    dataset = out / "dataset"
    report["photos"] = stand_in_photos(dataset, n_photos, photos)
    lib = out / "lib"
    lib.mkdir()
    (lib / "emosmc-0.0.0-py3-none-any.whl").write_bytes(b"")  # the install cell finds it; emosmc is installed
    for layout in layouts:
        root = out / layout
        outputs, rows = {}, []
        for key in [k for k in ORDER if k not in skip]:
            stem, resume = key.split("@")[0], key.endswith("@resume")
            folders, _ = push.build(root / "build" / key.replace("@", "-"), USER, only=[stem], wheel=False,
                                    resume=resume, params=params[key])
            meta = json.loads((folders[stem] / "kernel-metadata.json").read_text())
            slug = meta["id"].split("/")[1]
            inp, work = root / "kaggle" / "input", root / "kaggle" / "working"
            lay_out_inputs(inp, layout, meta, dataset, lib, outputs)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            env = {"EMOSMC_KAGGLE_INPUT": str(inp), "EMOSMC_KAGGLE_WORKING": str(work), "HF_HOME": str(out / "hf"),
                   "TORCH_HOME": str(out / "torch"),
                   "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "MPLBACKEND": "Agg", "TQDM_DISABLE": "1",
                   **NO_INTERNET}
            with ReadOnly(inp, namespace) as ro:
                row = run_kernel(folders[stem] / meta["code_file"], work, env, timeout)
            row.update(kernel=key, layout=layout, read_only=ro.method,
                       wrote=sorted(str(p.relative_to(work)) for p in work.iterdir()))
            rows.append(row)
            print(f"[{layout}] {key}: {row['cells_run']}/{row['cells']} cells in {row['seconds']} s"
                  + (f" -- FAILED: {row['error'][:300]}" if row["error"] else ""), file=sys.stderr, flush=True)
            if row["error"]:
                break
            dest = out / "outputs" / layout / slug  # Kaggle keeps the latest version's output
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(work, dest)
            outputs[slug] = dest
        report[layout] = rows
    report["ok"] = all(not r["error"] and r["cells_run"] == r["cells"] for lay in layouts for r in report[lay])
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--layout", choices=["classic", "2026", "both"], default="both")
    p.add_argument("--size", choices=["tiny", "real"], default="tiny")
    p.add_argument("--photos", help="a folder of face photos (e.g. ../shared/data/celebahq-samples)")
    p.add_argument("--n-photos", type=int, default=12)
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    p.add_argument("--no-namespace", action="store_true", help="chmod and snapshots only, no read-only bind mount")
    p.add_argument("--no-facenet", action="store_true",
                   help="no stand-in FaceNet checkpoint: kernel 05 must finish without FaceNet's weights")
    p.add_argument("--skip", nargs="*", default=[], choices=[k for k in ORDER if "@" in k],
                   help="runs to leave out (a second layout need not resume again: resuming reads no inputs)")
    a = p.parse_args(argv)
    namespace = os.environ.get("EMOSMC_SIM_NAMESPACE") == "1"
    if not namespace and not a.no_namespace and os.geteuid() == 0 and shutil.which("unshare") and \
            subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0:
        # a private mount namespace, so the inputs can be bind-mounted read-only even for root
        env = {**os.environ, "EMOSMC_SIM_NAMESPACE": "1"}
        sys.exit(subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv],
                                env=env).returncode)
    layouts = ("classic", "2026") if a.layout == "both" else (a.layout,)
    report = simulate(Path(a.out), layouts, a.size, a.photos, a.n_photos, a.timeout, namespace, not a.no_facenet,
                      a.skip)
    summary = {lay: [{k: r[k] for k in ("kernel", "cells", "cells_run", "seconds", "read_only", "error")}
                     for r in report[lay]] for lay in layouts}
    print(json.dumps({"ok": report["ok"], "size": report["size"], "facenet": report["facenet"], "photos": report["photos"],
                      "stand_in_parameters_millions": report["stand_in_parameters_millions"], **summary}, indent=1))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
