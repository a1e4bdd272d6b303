"""The toy world's data and the command that (re)trains the bundled models.

    python -m emosmc.toy train-assets [--out lib/emosmc/assets/toy] [--scale 1.0] [--no-long-refine]

Training is a list of named stages (:func:`default_stages`: classifier, judge, vae, unet, their
refinements, the latent scorer). Each saves a ``save_pretrained`` folder and is skipped when its folder
exists or the log records it, so an interrupted run resumes at the stage it was in. Training is logged to
W&B (offline unless a key is configured) and to ``<out>/training_log.json`` (seconds and threads per stage).
Stages that were tried and not shipped live in ``benchmarks/experiments/`` (docs/toy_world_experiments.md).
"""
from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import torch

from ..diffusion import encode_images
from ..labels import EMOTIONS
from ..tracking import nolog
from .faces import HELDOUT_SEED, TRAIN_SEED
from .gallery import source_rows, toy_faces  # the toy world's faces in memory (they live in gallery.py)

__all__ = ["toy_faces", "source_rows", "TRAIN_SEED", "HELDOUT_SEED", "train_assets", "default_stages", "Stage",
           "AssetRun", "toy_image_folder", "toy_latent_cache"]


def toy_image_folder(root: Path, n_identities: int = 40, seed: int = HELDOUT_SEED, bad_files: bool = True) -> Path:
    """A rendered toy-face folder (``root/images`` + ``root/labels.csv``), written on first use;
    ``bad_files`` adds the troublemakers of :func:`emosmc.toy.dataset.add_bad_files` to ``images/``."""
    from .dataset import add_bad_files, write_dataset

    root = Path(root)
    if not (root / "labels.csv").exists():
        write_dataset(root, n_identities, seed)
        if bad_files:
            add_bad_files(root / "images")
    return root


def toy_latent_cache(work: Path, n_identities: int = 40, progress: bool = False):
    """The toy profile's latent cache ``<work>/latents-toy`` (what notebook 01 makes), made here
    when absent so every notebook also runs on its own."""
    from ..data import ImageFolderDataset
    from ..latents import LatentCache, encode_folder, find_cache
    from ..profiles import get_profile

    from ..tracking import weights_fingerprint

    vae = get_profile("toy").load("vae", "cpu")
    found = find_cache("latents-toy", work)
    if found:
        cache = LatentCache.open(found)
        if cache.manifest.get("vae_weights") == weights_fingerprint(vae):
            return cache
        # made by another VAE (retrained models), or before caches recorded theirs: encode again, keep the old one
        print(f"{found} holds latents of other VAE weights (or unrecorded ones): encoding again")
        if Path(found).resolve().parent == Path(work).resolve():  # ours (not an input): kept beside, once
            aside = Path(work) / f"latents-toy.vae-{cache.manifest.get('vae_weights') or 'unrecorded'}"
            shutil.rmtree(aside, ignore_errors=True)
            Path(found).rename(aside)
    folder = toy_image_folder(Path(work) / "toy-faces", n_identities)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bad files are skipped and listed in the manifest
        dataset = ImageFolderDataset(folder / "images", 64)
    return encode_folder(vae, dataset, Path(work) / "latents-toy", vae_id="emosmc toy vae", progress=progress)


def _labels_for(model, canonical: torch.Tensor) -> torch.Tensor:
    by_name = {n: int(i) for i, n in model.config.id2label.items()}
    lut = torch.tensor([by_name[e] for e in EMOTIONS])
    return lut[canonical]


# -- train-assets: a list of named stages -------------------------------------------------------------------

@dataclass
class AssetRun:
    """What every stage of :func:`train_assets` reads: the output folder, the rendered training faces
    ``x`` (in ``[-1, 1]``) with their ``labels``, the ``scale`` of data and steps, the seed, the log, and
    the record written to ``<out>/training_log.json``."""

    out: Path
    x: torch.Tensor
    labels: torch.Tensor
    scale: float = 1.0
    seed: int = 0
    progress: bool = True
    log: Callable[[dict, int], None] = nolog
    record: dict = field(default_factory=dict)

    def steps(self, n: int, least: int = 50) -> int:
        """``n`` steps at full scale, scaled (at least ``least``)."""
        return max(least, int(n * self.scale))

    def latents(self, sample_seed: int) -> torch.Tensor:
        """Every training face encoded once with the current VAE (a posterior sample), scaled."""
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(self.out / "vae").eval()
        g = torch.Generator().manual_seed(sample_seed)
        return torch.cat([encode_images(vae, b, generator=g) for b in self.x.split(256)])

    def save_record(self) -> None:
        (self.out / "training_log.json").write_text(json.dumps(self.record, indent=2))


@dataclass(frozen=True)
class Stage:
    """One stage of :func:`train_assets`: ``fn(run) -> info`` writes ``<out>/<name>/``. A first phase is done
    when that folder exists; a refinement (``refines``: a later phase that rewrites an existing folder) when
    the log records it."""

    name: str
    fn: Callable[[AssetRun], Optional[dict]]
    refines: bool = False

    def done(self, run: AssetRun) -> bool:
        return self.name in run.record if self.refines else (run.out / self.name / "config.json").exists()

    def __call__(self, run: AssetRun) -> None:
        """Run the stage unless it is done; the log records its seconds and threads."""
        if self.done(run):
            print(f"{self.name}: already done, skipping", flush=True)
            return
        t = time.time()
        info = self.fn(run) or {}
        run.record.pop(self.name, None)  # a stage run again is logged where it ran: the log's order is the run's
        run.record[self.name] = {"seconds": round(time.time() - t, 1), "threads": torch.get_num_threads(), **info}
        run.save_record()
        print(f"{self.name}: done in {run.record[self.name]['seconds']} s {info}", flush=True)


def _fit_classifier(run: AssetRun, name: str, seed: int) -> dict:
    """The guidance classifier or the judge (another architecture and seed, so that it does not share the
    classifier's blind spots), from scratch on the training faces."""
    from ..profiles import toy_classifier, toy_judge
    from ..scorers import EmotionClassifier
    from ..training import train_classifier

    m = (toy_classifier if name == "classifier" else toy_judge)(seed)
    steps = run.steps(1200)
    train_classifier(m, run.x, _labels_for(m, run.labels), steps=steps, seed=seed, progress=run.progress, log=run.log)
    EmotionClassifier(m, [0.5] * 3, [0.5] * 3, (64, 64)).save_pretrained(run.out / name)
    return {"steps": steps}


def classifier_stage(run: AssetRun) -> dict:
    return _fit_classifier(run, "classifier", run.seed)


def judge_stage(run: AssetRun) -> dict:
    return _fit_classifier(run, "judge", run.seed + 1)


def vae_stage(run: AssetRun) -> dict:
    """The VAE, then its latent scaling factor (1 / std of the latents)."""
    from diffusers import AutoencoderKL

    from ..profiles import toy_vae_config
    from ..training import latent_scaling_factor, train_vae

    torch.manual_seed(run.seed)
    vae = AutoencoderKL(**toy_vae_config())
    steps = run.steps(1500)
    train_vae(vae, run.x, steps=steps, seed=run.seed, progress=run.progress, log=run.log)
    sf = latent_scaling_factor(vae, run.x[:2048])
    vae.register_to_config(scaling_factor=sf)
    vae.save_pretrained(run.out / "vae")
    return {"steps": steps, "scaling_factor": sf}


def refine_unet(run: AssetRun, latents: torch.Tensor, steps: int, seed: int, ema_decay: float = 0.999) -> None:
    """Continue the UNet of ``<out>/unet`` on ``latents`` (learning rate 2e-4, annealed with a cosine; the
    full EMA decay from the start) and save the EMA weights back."""
    from diffusers import UNet2DModel

    from ..profiles import load_scheduler
    from ..training import train_toy_unet

    unet = UNet2DModel.from_pretrained(run.out / "unet")
    _, ema = train_toy_unet(unet, latents, load_scheduler(), steps=steps, lr=2e-4, ema_decay=ema_decay, seed=seed,
                            progress=run.progress, log=run.log, ema_warmup=False, decay_lr=True)
    ema.save_pretrained(run.out / "unet")


def unet_stage(run: AssetRun) -> dict:
    """The UNet from scratch on posterior samples of the training faces' latents."""
    from diffusers import UNet2DModel

    from ..profiles import load_scheduler, toy_unet_config
    from ..training import train_toy_unet

    lat = run.latents(run.seed)
    torch.manual_seed(run.seed)
    unet = UNet2DModel(**toy_unet_config())
    sch = load_scheduler()
    steps = run.steps(4000)
    _, ema = train_toy_unet(unet, lat, sch, steps=steps, seed=run.seed, progress=run.progress, log=run.log)
    ema.save_pretrained(run.out / "unet")
    sch.save_pretrained(run.out / "unet")
    return {"steps": steps, "latent_std": float(lat.std())}


def unet_refine_stage(run: AssetRun) -> dict:
    """More UNet steps on fresh posterior samples, annealed."""
    steps = run.steps(3000)
    refine_unet(run, run.latents(run.seed + 3), steps, run.seed + 3)
    return {"steps": steps}


def vae_decoder_refine_stage(run: AssetRun) -> dict:
    """The VAE's decoder alone (the encoder is frozen, so the UNet's latents stay valid)."""
    from diffusers import AutoencoderKL

    from ..training import train_vae

    vae = AutoencoderKL.from_pretrained(run.out / "vae")
    steps = run.steps(600)
    train_vae(vae, run.x, steps=steps, lr=5e-4, seed=run.seed + 2, progress=run.progress, log=run.log,
              decoder_only=True)
    vae.save_pretrained(run.out / "vae")
    return {"steps": steps}


def classifier_recon_finetune_stage(run: AssetRun) -> dict:
    """Fine-tune the guidance classifier on originals plus their VAE reconstructions: steering scores
    decoded latents, so the classifier must read the VAE's (slightly blurred) mouths."""
    from diffusers import AutoencoderKL

    from ..profiles import load_classifier
    from ..training import train_classifier

    vae = AutoencoderKL.from_pretrained(run.out / "vae").eval()
    with torch.no_grad():
        rec = torch.cat([vae.decode(vae.encode(b).latent_dist.mean).sample.clamp(-1, 1) for b in run.x.split(256)])
    clf = load_classifier(run.out / "classifier")
    steps = run.steps(400)
    train_classifier(clf.model, torch.cat([run.x, rec]), _labels_for(clf.model, run.labels).repeat(2), steps=steps,
                     lr=2e-4, seed=run.seed + 4, progress=run.progress, log=run.log)
    clf.save_pretrained(run.out / "classifier")
    return {"steps": steps}


def unet_long_refine_stage(run: AssetRun) -> dict:
    """A longer, annealed run from the current EMA weights, on fresh posterior samples (``--long-refine``)."""
    steps = run.steps(12000)
    lat = torch.cat([run.latents(run.seed + 5), run.latents(run.seed + 6)])
    refine_unet(run, lat, steps, run.seed + 5, ema_decay=0.9995)
    return {"steps": steps}


def latent_scorer_stage(run: AssetRun) -> dict:
    """The fast path's latent scorer, distilled from the guidance classifier on the final UNet's x0
    predictions (so it comes after every stage it depends on)."""
    from diffusers import AutoencoderKL, UNet2DModel

    from ..latent_scorer import LatentEmotionScorer, distill_latent_scorer
    from ..profiles import load_classifier, load_scheduler

    torch.manual_seed(run.seed)
    scorer = LatentEmotionScorer(sample_size=16, block_channels=(16, 32))
    steps = run.steps(300)
    distill_latent_scorer(scorer, run.latents(run.seed + 7), AutoencoderKL.from_pretrained(run.out / "vae").eval(),
                          load_classifier(run.out / "classifier"), UNet2DModel.from_pretrained(run.out / "unet").eval(),
                          load_scheduler(), steps=steps, batch_size=32, seed=run.seed + 7, progress=run.progress,
                          log=run.log)
    scorer.save_pretrained(run.out / "latent_scorer")
    return {"steps": steps}


def region_detector_stage(run: AssetRun) -> dict:
    """The toy world's expression-region detector (:class:`emosmc.regions.RegionDetector`): trained on renders
    of training identities, whose renderer knows where the brows, eyes and mouth are and where each expression
    draws. Needs no other model."""
    import numpy as np
    import torch.nn.functional as F

    from ..data import images_to_tensor
    from ..regions import RegionDetector, train_region_detector
    from .faces import expression_parts

    imgs, _, ids, who = toy_faces(max(20, int(600 * run.scale)), TRAIN_SEED + 1)
    x = images_to_tensor(imgs)
    # the targets: the share of each 4x4 block where some expression of the same face draws something else --
    # the pixels an emotion edit may have to change (every identity is rendered with all seven expressions) --
    # inside the renderer's brows-and-eyes and mouth parts
    parts = torch.from_numpy(np.stack([np.stack(expression_parts(ids[int(i)], x.shape[-1])) for i in who])).float()
    faces = x.view(-1, 7, *x.shape[1:])  # (identities, 7 expressions, 3, H, W)
    moved = (faces.amax(1) - faces.amin(1)).abs().amax(1) > 0.1  # (identities, H, W): differs between expressions
    moved = F.max_pool2d(moved.float()[:, None], 3, 1, 1)[:, 0]  # and a pixel around
    y = F.avg_pool2d(parts * moved.repeat_interleave(7, 0)[:, None], 4)
    torch.manual_seed(run.seed)
    det = RegionDetector()
    info = train_region_detector(det, x, y, steps=run.steps(1500), seed=run.seed + 11, progress=run.progress,
                                 log=run.log)
    det.save_pretrained(run.out / "region_detector")
    return {**info, "images": len(x)}


def default_stages(long_refine: bool = False) -> List[Stage]:
    """The stages of ``train-assets``, in order. Experiments that were tried and not shipped add their own
    (``benchmarks/experiments/``, docs/toy_world_experiments.md)."""
    return [
        Stage("classifier", classifier_stage),
        Stage("judge", judge_stage),
        Stage("vae", vae_stage),
        Stage("unet", unet_stage),
        Stage("unet_refine", unet_refine_stage, refines=True),
        Stage("vae_decoder_refine", vae_decoder_refine_stage, refines=True),
        Stage("classifier_recon_finetune", classifier_recon_finetune_stage, refines=True),
        *([Stage("unet_long_refine", unet_long_refine_stage, refines=True)] if long_refine else []),
        Stage("latent_scorer", latent_scorer_stage),
        Stage("region_detector", region_detector_stage),
    ]


def train_assets(out: Path, scale: float = 1.0, seed: int = 0, progress: bool = True, long_refine: bool = False,
                 stages: Optional[Sequence[Stage]] = None) -> dict:
    """Render the training faces and run ``stages`` (default: :func:`default_stages`) into ``out``, each
    skipped when done; returns the training log (also ``<out>/training_log.json``). The bundled models were
    trained with ``long_refine=True`` (the command line's default); the function's default leaves it out, for
    quick runs at a small ``scale``."""
    from ..data import images_to_tensor
    from ..tracking import wandb_logger

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    record = json.loads((out / "training_log.json").read_text()) if (out / "training_log.json").exists() else {}
    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.time()
    imgs, labels, _, _ = toy_faces(max(20, int(1500 * scale)), TRAIN_SEED)
    x = images_to_tensor(imgs)
    record.update(render_s=round(time.time() - t0, 1), train_images=len(x))
    print(f"rendered {len(x)} training faces in {record['render_s']} s", flush=True)
    log = wandb_logger("emosmc-toy", "train-assets", {"scale": scale})
    run = AssetRun(out, x, labels, scale, seed, progress, log, record)
    for stage in default_stages(long_refine) if stages is None else stages:
        stage(run)
    record.pop("total_s", None)  # last, after the stages, as they are
    record["total_s"] = round(sum(v["seconds"] for v in record.values() if isinstance(v, dict)), 1)
    run.save_record()
    if hasattr(log, "run"):
        log.run.finish()
    return record
