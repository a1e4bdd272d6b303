"""Resumable ablation sweeps with the report's metrics (notebooks/05_ablations.ipynb).

    configs = one_at_a_time(BASE, guidance_scale=[1, 5, 10, 20], noise_strength=[0.1, 0.2, 0.3, 0.4])
    rows = run_ablation(pipe, images, ids, configs, "happy", "work/ablation.csv")

One CSV row per (config, image): the config, the image id, the target accuracy
(classifier probability of the target -- the report's metric), the realism (MTCNN
face probability -- the report's other metric), an optional judge probability,
wall time and network evaluations. Rows of a config are appended once its batch
is done; rerunning skips (config, image) pairs already in the CSV, so a sweep
killed half-way resumes where it stopped.
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from .edit_config import EditConfig
from .evaluation import evaluate
from .labels import target_indices
from .metrics import Realism
from .tracking import weights_fingerprint
from .profiles import row_generators

__all__ = ["one_at_a_time", "grid", "run_ablation", "continue_from_previous", "read_rows", "summarise", "config_key", "ablation_plot"]

FIELDS = ["config", "swept", "image", "target", "target_prob", "realism", "judge_prob", "seconds", "unet_evals",
          "decodes", "true_flip", "identity"]
LABELS = ("swept", "method")  # what a config may carry besides pipeline settings
MODELS = ("unet", "vae", "classifier", "latent_scorer")  # the pipeline's weights a CSV's rows depend on


def config_key(config: dict) -> str:
    """The JSON a config is stored under in the CSV: settings left at their default (``EditConfig()``'s)
    are dropped, so writing a default out or not is the same config."""
    defaults = EditConfig().to_dict()
    return json.dumps({k: v for k, v in config.items() if k not in defaults or defaults[k] != v}, sort_keys=True)


def one_at_a_time(base: dict, **sweeps: Sequence) -> List[dict]:
    """The report's design: vary one parameter at a time around ``base``. Each config carries
    ``"swept"`` (the parameter it varies); the base appears once per swept parameter."""
    return [dict(base, **{k: v}, swept=k) for k, vals in sweeps.items() for v in vals]


def grid(base: dict, **axes: Sequence) -> List[dict]:
    """Every combination of ``axes`` around ``base`` (``"swept"`` names them, joined by ``x``)."""
    import itertools

    keys = list(axes)
    return [dict(base, **dict(zip(keys, vals)), swept="x".join(keys)) for vals in itertools.product(*axes.values())]


def read_rows(csv_path: Union[str, Path]) -> List[dict]:
    path = Path(csv_path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    defaults = EditConfig().to_dict()  # a config stores only what differs from them
    for r in rows:
        for k in ("target_prob", "realism", "judge_prob", "seconds", "true_flip", "identity"):
            r[k] = float(r[k]) if r.get(k) not in (None, "") else float("nan")
        for k in ("unet_evals", "decodes"):
            r[k] = int(r[k]) if r.get(k) not in (None, "") else 0
        r.update({k: v for k, v in {**defaults, **json.loads(r["config"])}.items() if k != "swept"})
    return rows


def continue_from_previous(csv_path: Union[str, Path], inputs: Union[str, Path, None] = None) -> Optional[Path]:
    """Kaggle: when ``csv_path`` does not exist yet, copy the same-named CSV left by an earlier
    version of the kernel (mounted under the inputs folder) so the sweep continues from it."""
    import shutil

    from .places import search_inputs

    path = Path(csv_path)
    if path.exists():
        return path
    found = search_inputs(path.name, inputs, want=Path.is_file)
    if not found:
        return None
    best = max(found, key=lambda f: len(read_rows(f)))
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(best, path)
    if models_file(best).exists():  # which models made it: run_ablation checks them against its own
        shutil.copy(models_file(best), models_file(path))
    return best


def run_ablation(pipe, images: torch.Tensor, image_ids: Sequence[str], configs: List[dict],
                 target: Union[str, Sequence[str]], csv_path: Union[str, Path], seed: int = 0,
                 realism: Optional[Callable] = None, judge: Optional[Callable] = None,
                 identities: Optional[Sequence] = None, identity: Optional[Callable] = None,
                 progress: bool = True, profile=None, measures: Optional[Callable] = None,
                 columns: Sequence[str] = ()) -> List[dict]:
    """Run every config on every image (one batched pipeline call per config) and append the rows to
    ``csv_path``; pairs already there are skipped. Returns all rows of the CSV. ``realism`` defaults
    to :class:`Realism`; ``judge`` (optional) is a second classifier returning ``(B, 7)`` probabilities;
    ``identities`` (toy world: one :class:`emosmc.toy.faces.Identity` per image) adds ``true_flip``,
    1 when the edit truly shows the target (:func:`emosmc.ground_truth.true_expression`); ``identity``
    (optional: a profile's :meth:`~emosmc.profiles.Profile.identity_measure`) maps ``(sources, edits,
    identities)`` (``None`` without ``identities``) to one number per image. A config is a dict of
    :class:`~emosmc.edit_config.EditConfig` settings (the rest: its defaults); its ``"swept"`` and ``"method"``
    (see :func:`emosmc.baselines.method_configs`) are labels stored with it, not settings. The measures are
    :func:`emosmc.evaluation.evaluate`'s; the ground truth is ``profile``'s (default: the toy world's, whose
    identities ``identities`` are). ``measures(config, output, evaluation, idx)`` (optional) adds ``columns``: it
    returns ``{column: one value per image of the batch}`` for the images ``idx`` it ran (a benchmark's own
    measures, e.g. KID)."""
    if len(images) != len(image_ids):
        raise ValueError(f"{len(images)} images but {len(image_ids)} ids")
    targets = [target] * len(images) if isinstance(target, str) else list(target)
    tidx = target_indices(targets)
    realism = realism or Realism()
    if identities is not None and profile is None:  # the identities are the toy world's: its ground truth
        from .profiles import get_profile

        profile = get_profile("toy")
    path = Path(csv_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _set_aside_if_other_models(path, weights_fingerprint(*(getattr(pipe, k, None) for k in MODELS)))
    columns = [c for c in dict.fromkeys(columns) if c not in FIELDS]  # run_ablation's own are never replaced
    fields = FIELDS + columns
    _upgrade_header(path, fields)
    done = {(r["config"], r["image"]) for r in read_rows(path)}
    new_file = not path.exists()
    todo = [(c, [i for i, im in enumerate(image_ids) if (config_key(c), str(im)) not in done]) for c in configs]
    todo = [(c, idx) for c, idx in todo if idx]
    bar = tqdm(todo, desc="ablation", disable=not progress)
    for c, idx in bar:
        config = EditConfig().replace(**{k: v for k, v in c.items() if k not in LABELS})
        bar.set_postfix({k: v for k, v in c.items() if k in (c.get("swept") or "").split("x")})
        t0 = time.time()
        # one generator per counterfactual, keyed by its id: its edit does not depend on the batch it ran in
        out = pipe(images[idx], [targets[i] for i in idx], config,
                   generator=row_generators(seed, [str(image_ids[i]) for i in idx]), progress=False)
        secs = (time.time() - t0) / len(idx)
        real = realism(out.images)
        who = [identities[i] for i in idx] if identities is not None else None
        ev = evaluate(images[idx], out.images, tidx[idx], profile if identities is not None else None,
                      identities=who, judge=False if judge is None else judge,
                      identity=False if identity is None else identity, classifier_probs=out.target_probs)
        jp, kept, truth_flip = ev.judge_prob, ev.identity, ev.true_flip
        more = measures(c, out, ev, idx) if measures is not None else {}
        with open(path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            if new_file:
                w.writeheader()
                new_file = False
            for j, i in enumerate(idx):
                w.writerow({"config": config_key(c), "swept": c.get("swept", ""), "image": str(image_ids[i]),
                            "target": targets[i], "target_prob": round(float(out.target_probs[j]), 5),
                            "realism": round(float(real[j]), 5),
                            "judge_prob": "" if jp is None else round(float(jp[j]), 5), "seconds": round(secs, 3),
                            "unet_evals": out.nfe["unet"] // len(idx), "decodes": out.nfe["decode"] // len(idx),
                            "true_flip": "" if truth_flip is None else int(truth_flip[j]),
                            "identity": "" if kept is None else round(float(kept[j]), 5),
                            **{k: "" if more.get(k) is None or more[k][j] is None else more[k][j] for k in columns}})
    return read_rows(path)


def models_file(path: Path) -> Path:
    """Where the fingerprint of the models that wrote a CSV is kept (beside it)."""
    return path.with_name(path.name + ".models")


def _set_aside_if_other_models(path: Path, fingerprint: Optional[str]) -> None:
    """Rows made by other weights (retrained models) are not results of these: the old CSV is renamed, said,
    and a new one starts. A CSV without a record (an older version wrote it) is taken as these models'."""
    if fingerprint is None:
        return
    record = models_file(path)
    old = record.read_text().strip() if record.exists() else None
    if old == fingerprint:
        return
    if path.exists() and old is not None:
        aside, k = path.with_name(f"{path.stem}.models-{old}{path.suffix}"), 1
        while aside.exists():  # never overwrite an earlier one
            aside, k = path.with_name(f"{path.stem}.models-{old}-{k}{path.suffix}"), k + 1
        os.replace(path, aside)
        os.replace(record, models_file(aside))
        print(f"{path.name} was made with other model weights ({old}, these are {fingerprint}): kept as "
              f"{aside.name}; starting a new {path.name}")
    elif path.exists():
        print(f"{path.name} has no record of the models that made it: taken as these ({fingerprint})")
    record.write_text(fingerprint + "\n")


def _upgrade_header(path: Path, fields: List[str] = FIELDS) -> None:
    """A CSV written before a column was added gets the column (empty), so new rows line up."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames == fields:
            return
        rows = list(reader)
    unknown = [k for k in (reader.fieldnames or []) if k not in fields]
    if unknown:
        raise ValueError(f"{path} has column(s) {unknown} this version does not write; keep that file and start a new CSV")
    tmp = path.with_name(path.name + ".upgrading")
    with open(tmp, "w", newline="") as f:  # then one rename: a session killed half-way loses nothing
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows({k: r.get(k, "") for k in fields} for r in rows)
    os.replace(tmp, path)


def summarise(rows: List[dict], swept: str) -> List[Dict]:
    """Mean metrics per value of the parameter ``swept`` (rows whose config sweeps it)."""
    groups: Dict = {}
    for r in rows:
        if r["swept"] == swept:
            groups.setdefault(r[swept], []).append(r)
    out = []
    for v in sorted(groups):
        g = groups[v]
        mean = lambda k: float(np.nanmean([r[k] for r in g])) if any(r[k] == r[k] for r in g) else float("nan")
        out.append({swept: v, "n": len(g), "target_accuracy": mean("target_prob"), "realism": mean("realism"),
                    "judge_prob": mean("judge_prob"), "true_flip": mean("true_flip"), "identity": mean("identity"),
                    "seconds": mean("seconds"), "unet_evals": mean("unet_evals"),
                    "decodes": mean("decodes")})
    return out


def ablation_plot(rows, params, metric: str = "target_accuracy", size_by: str = "realism", scale: float = 3.0,
                  also: Sequence[str] = ("true_flip", "judge_prob")):
    """The report's Figure 5: per swept parameter, the mean ``metric`` against the parameter's value,
    marker area proportional to the mean ``size_by`` (realism). Each of ``also`` that was measured
    (in the toy world: the true flip rate by the ground truth, the judge's probability of the
    target) is drawn as a line of its own."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(params), figsize=(scale * len(params), scale * 0.9), squeeze=False)
    for ax, p in zip(axes[0], params):
        s = summarise(rows, p)
        x = [r[p] for r in s]
        y = [r[metric] for r in s]
        area = [20 + 300 * max(0.0, r[size_by]) if r[size_by] == r[size_by] else 20 for r in s]
        ax.plot(x, y, color="0.7", zorder=1)
        ax.scatter(x, y, s=area, zorder=2, alpha=0.8, label=metric.replace("_", " "))
        for k, style in zip(also or (), ("C3-", "k--", "C2:")):
            if any(r.get(k) == r.get(k) for r in s):
                ax.plot(x, [r[k] for r in s], style, marker=".", lw=1.2, zorder=3, label=k.replace("_", " "))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9, loc="lower right")
        for xi, yi, r in zip(x, y, s):
            ax.annotate(f"{r[size_by]:.2f}", (xi, yi), textcoords="offset points", xytext=(0, 9), ha="center",
                        fontsize=9)
        ax.set_xlabel(p)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(metric.replace("_", " ") if ax is axes[0][0] else "")
    fig.suptitle(f"{metric.replace('_', ' ')} by parameter (marker size and label: {size_by})", fontsize=11)
    fig.tight_layout()
    return fig
