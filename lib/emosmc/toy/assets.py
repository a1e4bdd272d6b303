"""The toy world's data and the command that (re)trains the bundled models.

    python -m emosmc.toy train-assets [--out lib/emosmc/assets/toy] [--scale 1.0] [--hard-rounds 0]

Each stage (classifier, judge, vae, unet, their refinements, the latent scorer,
and with ``--hard-rounds N`` rounds of hard examples) saves a ``save_pretrained`` folder and is skipped
when its folder exists or the log records it, so an interrupted run resumes at the
stage it was in (a round's steered particles are cached in the work folder). Training is logged to W&B (offline unless a key is configured)
and to ``<out>/training_log.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
import warnings
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch

from ..diffusion import encode_images
from ..labels import EMOTIONS
from .faces import HELDOUT_SEED, INTENSITY_RANGE, TRAIN_SEED, Identity, render, sample_identity

__all__ = ["toy_faces", "source_rows", "TRAIN_SEED", "HELDOUT_SEED", "train_assets", "toy_image_folder", "toy_latent_cache"]

FRESH_SEED, FRESH_IDENTITIES = 1, 6000  # the UNet's last stage: identities no other stage sees
HARD_IDENTITIES = 30  # identities steered per round of hard examples (train-assets --hard-rounds N)


def toy_faces(n_identities: int, seed: int, expressions: Sequence[str] = EMOTIONS, size: int = 64,
              intensity_range=INTENSITY_RANGE):
    """Render every identity with every expression, in memory.

    Returns ``(images uint8 (M, size, size, 3), labels (M,) canonical emotion index, identities list,
    identity index (M,))``. Training uses ``TRAIN_SEED``; the held-out faces (new identities) use
    ``HELDOUT_SEED``.
    """
    rng = np.random.default_rng(seed)
    ids: List[Identity] = [sample_identity(rng) for _ in range(n_identities)]
    imgs, labels, who = [], [], []
    for i, ident in enumerate(ids):
        for e in expressions:
            imgs.append(render(ident, e, size, float(rng.uniform(*intensity_range))))
            labels.append(EMOTIONS.index(e))
            who.append(i)
    return np.stack(imgs), torch.tensor(labels), ids, torch.tensor(who)


def source_rows(n_identities: int) -> torch.Tensor:
    """The rows of :func:`toy_faces` that the benchmarks edit: identity ``i`` shown with ``EMOTIONS[i % 7]``,
    so every expression is a source equally often."""
    return torch.tensor([i * 7 + i % 7 for i in range(n_identities)])


def toy_image_folder(root: Path, n_identities: int = 40, seed: int = HELDOUT_SEED, bad_files: bool = True) -> Path:
    """A rendered toy-face folder (``root/images`` + ``root/labels.csv``), written on first use;
    ``bad_files`` adds the troublemakers of :func:`emosmc.toy.faces.add_bad_files` to ``images/``."""
    from .faces import add_bad_files, write_dataset

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

    found = find_cache("latents-toy", work)
    if found:
        return LatentCache.open(found)
    folder = toy_image_folder(Path(work) / "toy-faces", n_identities)
    vae = get_profile("toy").load("vae", "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the bad files are skipped and listed in the manifest
        dataset = ImageFolderDataset(folder / "images", 64)
    return encode_folder(vae, dataset, Path(work) / "latents-toy", vae_id="emosmc toy vae", progress=progress)


def _labels_for(model, canonical: torch.Tensor) -> torch.Tensor:
    by_name = {n: int(i) for i, n in model.config.id2label.items()}
    lut = torch.tensor([by_name[e] for e in EMOTIONS])
    return lut[canonical]


def train_assets(out: Path, scale: float = 1.0, seed: int = 0, progress: bool = True, hard_rounds: int = 0,
                 fresh_faces: bool = False, long_refine: bool = False) -> dict:
    from diffusers import AutoencoderKL, UNet2DModel

    from ..profiles import toy_classifier, toy_judge, toy_unet_config, toy_vae_config, load_scheduler
    from ..scorers import EmotionClassifier
    from ..data import images_to_tensor
    from ..training import latent_scaling_factor, train_classifier, train_toy_unet, train_vae, wandb_logger

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "training_log.json"
    record = json.loads(log_path.read_text()) if log_path.exists() else {}
    torch.set_num_threads(max(1, torch.get_num_threads()))
    n_ids = max(20, int(1500 * scale))
    t0 = time.time()
    imgs, labels, _, _ = toy_faces(n_ids, TRAIN_SEED)
    x = images_to_tensor(imgs)
    record["render_s"] = round(time.time() - t0, 1)
    record["train_images"] = len(x)
    print(f"rendered {len(x)} training faces in {record['render_s']} s", flush=True)
    log = wandb_logger("emosmc-toy", "train-assets", {"scale": scale})

    def stage(name, fn, refines=False):
        """Run ``fn`` unless done: a first phase is done when its folder exists, a refinement
        (a second phase that rewrites an existing folder) when the log records it."""
        done = name in record if refines else (out / name / "config.json").exists()
        if done:
            print(f"{name}: already done, skipping", flush=True)
            return
        t = time.time()
        info = fn() or {}
        record[name] = {"seconds": round(time.time() - t, 1), "threads": torch.get_num_threads(), **info}
        log_path.write_text(json.dumps(record, indent=2))
        print(f"{name}: done in {record[name]['seconds']} s {info}", flush=True)

    def cached_latents(sample_seed):
        """Every training face encoded once with the current VAE (a posterior sample), scaled."""
        vae = AutoencoderKL.from_pretrained(out / "vae").eval()
        g = torch.Generator().manual_seed(sample_seed)
        return torch.cat([encode_images(vae, b, generator=g) for b in x.split(256)])

    def classifier(make, name, s):
        def fn():
            m = make(s)
            steps = max(50, int(1200 * scale))
            train_classifier(m, x, _labels_for(m, labels), steps=steps, seed=s, progress=progress, log=log)
            EmotionClassifier(m, [0.5] * 3, [0.5] * 3, (64, 64)).save_pretrained(out / name)
            return {"steps": steps}
        return fn

    stage("classifier", classifier(toy_classifier, "classifier", seed))
    stage("judge", classifier(toy_judge, "judge", seed + 1))

    def vae_fn():
        torch.manual_seed(seed)
        vae = AutoencoderKL(**toy_vae_config())
        steps = max(50, int(1500 * scale))
        train_vae(vae, x, steps=steps, seed=seed, progress=progress, log=log)
        sf = latent_scaling_factor(vae, x[:2048])
        vae.register_to_config(scaling_factor=sf)
        vae.save_pretrained(out / "vae")
        return {"steps": steps, "scaling_factor": sf}

    stage("vae", vae_fn)

    def decoder_fn():
        vae = AutoencoderKL.from_pretrained(out / "vae")
        steps = max(50, int(600 * scale))
        train_vae(vae, x, steps=steps, lr=5e-4, seed=seed + 2, progress=progress, log=log, decoder_only=True)
        vae.save_pretrained(out / "vae")
        return {"steps": steps}


    def unet_fn():
        lat = cached_latents(seed)
        torch.manual_seed(seed)
        unet = UNet2DModel(**toy_unet_config())
        sch = load_scheduler()
        steps = max(50, int(4000 * scale))
        _, ema = train_toy_unet(unet, lat, sch, steps=steps, seed=seed, progress=progress, log=log)
        ema.save_pretrained(out / "unet")
        sch.save_pretrained(out / "unet")
        return {"steps": steps, "latent_std": float(lat.std())}

    stage("unet", unet_fn)

    def unet_refine_fn():
        lat = cached_latents(seed + 3)
        unet = UNet2DModel.from_pretrained(out / "unet")
        steps = max(50, int(3000 * scale))
        _, ema = train_toy_unet(unet, lat, load_scheduler(), steps=steps, lr=2e-4, seed=seed + 3, progress=progress,
                            log=log, ema_warmup=False, decay_lr=True)
        ema.save_pretrained(out / "unet")
        return {"steps": steps}

    stage("unet_refine", unet_refine_fn, refines=True)
    stage("vae_decoder_refine", decoder_fn, refines=True)  # the encoder is frozen: the UNet's latents stay valid

    def classifier_recon_fn():
        """Fine-tune the guidance classifier on originals plus their VAE reconstructions: steering
        scores decoded latents, so the classifier must read the VAE's (slightly blurred) mouths."""
        from ..profiles import load_classifier

        vae = AutoencoderKL.from_pretrained(out / "vae").eval()
        with torch.no_grad():
            rec = torch.cat([vae.decode(vae.encode(b).latent_dist.mean).sample.clamp(-1, 1) for b in x.split(256)])
        clf = load_classifier(out / "classifier")
        steps = max(50, int(400 * scale))
        train_classifier(clf.model, torch.cat([x, rec]), _labels_for(clf.model, labels).repeat(2), steps=steps,
                         lr=2e-4, seed=seed + 4, progress=progress, log=log)
        clf.save_pretrained(out / "classifier")
        return {"steps": steps}

    stage("classifier_recon_finetune", classifier_recon_fn, refines=True)

    def unet_long_fn():
        """A longer, annealed run from the current EMA weights, on fresh posterior samples each phase."""
        unet = UNet2DModel.from_pretrained(out / "unet")
        steps = max(50, int(12000 * scale))
        lat = torch.cat([cached_latents(seed + 5), cached_latents(seed + 6)])
        _, ema = train_toy_unet(unet, lat, load_scheduler(), steps=steps, lr=2e-4, ema_decay=0.9995, seed=seed + 5,
                            progress=progress, log=log, ema_warmup=False, decay_lr=True)
        ema.save_pretrained(out / "unet")
        return {"steps": steps}

    if long_refine:
        stage("unet_long_refine", unet_long_fn, refines=True)

    def unet_fresh_fn():
        """An experiment, off by default (``--fresh-faces``; docs/toy_world_experiments.md): 3000 more
        steps on 6000 identities no other stage sees. On 1500 identities the UNet's denoising loss on new
        faces was 15% above its training loss at t = 100-250; this stage brings it down by 8%, but the true
        flip rate did not follow (0.51 -> 0.53 on the tuning faces, 0.69 -> 0.65 on the held-out ones).
        The latent scorer is removed so that the next stage distils it again from the new UNet."""
        unet = UNet2DModel.from_pretrained(out / "unet")
        vae = AutoencoderKL.from_pretrained(out / "vae").eval()
        im, *_ = toy_faces(max(20, int(FRESH_IDENTITIES * scale)), FRESH_SEED)
        g = torch.Generator().manual_seed(seed + 8)
        lat = torch.cat([encode_images(vae, b, generator=g) for b in images_to_tensor(im).split(256)])
        steps = max(50, int(3000 * scale))
        _, ema = train_toy_unet(unet, lat, load_scheduler(), steps=steps, lr=2e-4, ema_decay=0.9995, seed=seed + 8,
                                progress=progress, log=log, ema_warmup=False, decay_lr=True)
        ema.save_pretrained(out / "unet")
        shutil.rmtree(out / "latent_scorer", ignore_errors=True)  # distilled from the old UNet
        return {"steps": steps, "images": len(lat)}

    if fresh_faces:
        stage("unet_fresh_faces_refine", unet_fresh_fn, refines=True)

    def latent_scorer_fn():
        """The fast path's latent scorer, distilled from the guidance classifier on the final UNet's
        x0 predictions (so it comes after every stage it depends on)."""
        from ..latent_scorer import LatentEmotionScorer, distill_latent_scorer
        from ..profiles import load_classifier

        torch.manual_seed(seed)
        scorer = LatentEmotionScorer(sample_size=16, block_channels=(16, 32))
        steps = max(50, int(300 * scale))
        distill_latent_scorer(scorer, cached_latents(seed + 7), AutoencoderKL.from_pretrained(out / "vae").eval(),
                              load_classifier(out / "classifier"), UNet2DModel.from_pretrained(out / "unet").eval(),
                              load_scheduler(), steps=steps, batch_size=32, seed=seed + 7, progress=progress, log=log)
        scorer.save_pretrained(out / "latent_scorer")
        return {"steps": steps}

    stage("latent_scorer", latent_scorer_fn)

    def hard_round_fn(r):
        """Rounds of hard examples (:mod:`emosmc.hard_examples`): steer fresh identities (seed 100·r) with
        the toy edit settings, label every final particle by the ground truth, and fine-tune the
        latent scorer (the reward that steers) on them. The last round also fine-tunes the judge on
        originals, VAE reconstructions and every round's particles, all with true labels. The guidance
        classifier is left as it is: fine-tuned on the particles it lost 2-5 points of accuracy on
        clean faces for 1.5-3 points more true flips among round 2's particles it was sure of."""
        from ..profiles import TOY_EDIT
        from ..hard_examples import finetune_classifier, finetune_latent_scorer, mine
        from ..pipeline import EmotionEditPipeline
        from ..places import work_dir
        from ..profiles import get_profile, load_classifier

        def fn():
            cache = work_dir() / "toy-hard-examples"
            cache.mkdir(parents=True, exist_ok=True)
            pipe = EmotionEditPipeline.from_profile(get_profile("toy", out))
            path = cache / f"round{r}-scale{scale:g}-seed{seed}.pt"
            t0 = time.time()
            if path.exists():  # mined by an interrupted run of this stage
                hard = torch.load(path, weights_only=False)
            else:
                n = max(2, int(HARD_IDENTITIES * scale))
                im, lab, ids, _ = toy_faces(n, TRAIN_SEED + 100 * r)
                pick = source_rows(n)
                hard = mine(pipe, images_to_tensor(im[pick.numpy()]), lab[pick], ids, TOY_EDIT,
                            torch.Generator().manual_seed(seed + r), progress=progress)
                torch.save(hard, path)
            info = {"mined": hard.summary(), "mining_seconds": round(time.time() - t0, 1)}
            for k in range(1, r):
                earlier = cache / f"round{k}-scale{scale:g}-seed{seed}.pt"
                if earlier.exists():
                    hard = hard.cat(torch.load(earlier, weights_only=False))
            with torch.no_grad():
                lat = torch.cat([pipe.encode(b) for b in x.split(256)])
            steps = max(20, int(600 * scale))
            finetune_latent_scorer(pipe.latent_scorer, pipe.unet, pipe.scheduler, lat, labels, hard, steps=steps,
                                   seed=seed + r, progress=progress, log=log)
            pipe.latent_scorer.save_pretrained(out / "latent_scorer")
            if r == hard_rounds:
                with torch.no_grad():
                    rec = torch.cat([pipe.decode(z) for z in lat.split(256)])
                judge = load_classifier(out / "judge")
                finetune_classifier(judge, torch.cat([x, rec]), labels.repeat(2), hard, hard_fraction=0.3,
                                    steps=max(20, int(400 * scale)), seed=seed + 50 + r, progress=progress, log=log)
                judge.save_pretrained(out / "judge")
            return {**info, "examples": len(hard), "steps": steps}
        return fn

    for r in range(1, hard_rounds + 1):  # off by default: see docs/toy_world_experiments.md (no held-out gain)
        stage(f"hard_examples_round{r}", hard_round_fn(r), refines=True)
    record["total_s"] = round(sum(v["seconds"] for v in record.values() if isinstance(v, dict)), 1)
    log_path.write_text(json.dumps(record, indent=2))
    if hasattr(log, "run"):
        log.run.finish()
    return record


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m emosmc.toy", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train-assets", help="train the bundled toy models from scratch")
    t.add_argument("--out", default=str(Path(__file__).parents[1] / "assets" / "toy"))
    t.add_argument("--scale", type=float, default=1.0, help="fraction of the default data and steps")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--fresh-faces", action="store_true",
                   help="an extra UNet stage on 6000 new identities (an experiment: no true-flip gain measured)")
    t.add_argument("--long-refine", action="store_true",
                   help="12000 more annealed UNet steps (the old world's last stage; about 80 CPU-minutes)")
    t.add_argument("--hard-rounds", type=int, default=0,
                   help="rounds of hard examples after the other stages (an experiment: no held-out gain measured)")
    w = sub.add_parser("write-dataset", help="render a toy-face image folder with labels.csv")
    w.add_argument("out")
    w.add_argument("--identities", type=int, default=100)
    w.add_argument("--seed", type=int, default=HELDOUT_SEED)
    a = p.parse_args(argv)
    if a.cmd == "train-assets":
        print(json.dumps(train_assets(Path(a.out), a.scale, a.seed, hard_rounds=a.hard_rounds,
                                      fresh_faces=a.fresh_faces, long_refine=a.long_refine), indent=2))
    else:
        from .faces import write_dataset

        print(write_dataset(a.out, a.identities, a.seed))


if __name__ == "__main__":
    main()
