"""Rounds of hard examples: teach the toy world's guidance what steering actually feeds it. Tried, not
shipped (docs/toy_world_experiments.md, "Hard examples"): no held-out gain.

    python benchmarks/experiments/hard_examples.py --out DIR [--rounds 2] [--scale 1.0] [--seed 0]

trains the toy assets into ``DIR`` (``python -m emosmc.toy train-assets``'s stages, each skipped when done)
and then runs the rounds as more stages of the same log (``hard_examples_round<r>``).

Steering optimises against its reward, so it drifts to latents the reward over-rates: a grey
smudge where a smile should be, scored "happy, p = 1.00". In the toy world the truth of every
edit is known (:func:`emosmc.ground_truth.true_expression`), so those failures can be labelled
and trained on:

1. :func:`mine` runs the pipeline on fresh identities (never the benchmark's, the tuning or the
   tests' faces) towards every other expression and keeps *all* final particles with their verdict;
2. :func:`finetune_latent_scorer` trains the latent scorer on x0 predictions of clean training
   latents with their **true** labels (not the pixel classifier's soft labels) mixed with the
   mined particles, noised again to random timesteps; :func:`finetune_classifier` does the same
   for a pixel classifier on the decoded particles (the toy assets use it for the judge).

A mined particle whose verdict is clear is a cross-entropy example of its true expression; one
the rule calls unclear (e.g. happy eyes over no mouth) teaches only "this is not the target":
the loss is ``-log(1 - p(target))``.
"""
import argparse
import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import List, Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from emosmc.data import images_to_tensor
from emosmc.diffusion import predict_x0
from emosmc.ground_truth import true_expression
from emosmc.labels import EMOTIONS
from emosmc.toy.assets import TRAIN_SEED, AssetRun, Stage, default_stages, source_rows, toy_faces, train_assets
from emosmc.toy.faces import Identity
from emosmc.training import optimizer_step

__all__ = ["HardExamples", "mine", "finetune_latent_scorer", "finetune_classifier", "hard_loss", "hard_round",
           "hard_round_stages"]

HARD_IDENTITIES = 30  # identities steered per round


@dataclass
class HardExamples:
    latents: torch.Tensor  # (M, C, h, w) scaled latents of final particles
    images: torch.Tensor  # (M, 3, H, W) their decodings in [-1, 1]
    labels: torch.Tensor  # (M,) true expression (canonical index) or -1 when unclear
    targets: torch.Tensor  # (M,) the expression steering aimed at

    def __len__(self):
        return len(self.labels)

    def cat(self, other: "HardExamples") -> "HardExamples":
        return HardExamples(*(torch.cat([a, b]) for a, b in zip(
            (self.latents, self.images, self.labels, self.targets),
            (other.latents, other.images, other.labels, other.targets))))

    def summary(self) -> dict:
        hit = self.labels == self.targets
        return {"particles": len(self), "true_flip": round(float(hit.float().mean()), 3),
                "unclear": round(float((self.labels < 0).float().mean()), 3)}


@torch.no_grad()
def mine(pipe, images: torch.Tensor, labels: torch.Tensor, identities: Sequence[Identity], settings: dict,
         generator: torch.Generator, batch: int = 12, progress: bool = True) -> HardExamples:
    """Edit each face towards every expression it does not show; return every final particle,
    decoded, with its true expression."""
    rows = [(i, t) for i in range(len(images)) for t in range(len(EMOTIONS)) if t != int(labels[i])]
    out = None
    for k in tqdm(range(0, len(rows), batch), desc="mining", disable=not progress):
        part = rows[k:k + batch]
        x = images[[i for i, _ in part]]
        tg = [EMOTIONS[t] for _, t in part]
        res = pipe(x, tg, generator=generator, progress=False, **settings)
        B, N = res.latents.shape[:2]
        lat = res.latents.reshape(B * N, *res.latents.shape[2:])
        imgs = pipe.decode(lat).cpu()
        ids = [identities[i] for i, _ in part for _ in range(N)]
        gt = true_expression(imgs, ids)
        tgt = torch.tensor([t for _, t in part]).repeat_interleave(N)
        h = HardExamples(lat.cpu(), imgs, gt.labels, tgt)
        out = h if out is None else out.cat(h)
    return out


def hard_loss(log_probs: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on examples with a clear label; ``-log(1 - p(target))`` on unclear ones."""
    clear = labels >= 0
    loss = log_probs.new_zeros(())
    if clear.any():
        loss = loss + F.nll_loss(log_probs[clear], labels[clear], reduction="sum")
    if (~clear).any():
        p_t = log_probs[~clear].gather(1, targets[~clear, None]).exp().squeeze(1)
        loss = loss - torch.log1p(-p_t.clamp(max=1 - 1e-6)).sum()
    return loss / len(labels)


def _mixed_batch(labels: torch.Tensor, hard: HardExamples, batch_size: int, n_hard: int, g: torch.Generator, dev):
    """Indices ``i`` of clean examples and ``j`` of mined ones, with the batch's labels and targets
    (a clean example's target is its own label)."""
    i = torch.randint(0, len(labels), (batch_size - n_hard,), generator=g)
    j = torch.randint(0, len(hard), (n_hard,), generator=g)
    y = torch.cat([labels[i], hard.labels[j]]).to(dev)
    tgt = torch.cat([labels[i], hard.targets[j]]).to(dev)
    return i, j, y, tgt


def finetune_latent_scorer(scorer, unet, scheduler, latents: torch.Tensor, labels: torch.Tensor,
                           hard: HardExamples, steps: int = 600, batch_size: int = 64, lr: float = 5e-4,
                           max_timestep: int = 900, clean_fraction: float = 0.25, hard_fraction: float = 0.5,
                           seed: int = 0, progress: bool = True, log=None):
    """Train ``scorer`` on x0 predictions (what ``reward_on="x0"`` scores) of noised latents: a
    ``1 - hard_fraction`` share of each batch from clean training ``latents`` with their true
    ``labels``, the rest from the mined particles with their verdicts. A ``clean_fraction`` of
    each batch is scored at t = 0 (the final particles)."""
    g = torch.Generator().manual_seed(seed)
    dev = next(unet.parameters()).device
    scorer.to(dev).train()
    opt = torch.optim.AdamW(scorer.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    n_hard = int(batch_size * hard_fraction)
    bar = tqdm(range(steps), desc="latent scorer (hard examples)", disable=not progress)
    for step in bar:
        i, j, y, tgt = _mixed_batch(labels, hard, batch_size, n_hard, g, dev)
        z0 = torch.cat([latents[i].float(), hard.latents[j].float()]).to(dev)
        t = torch.randint(0, max_timestep + 1, (batch_size,), generator=g)
        t[torch.rand(batch_size, generator=g) < clean_fraction] = 0
        with torch.no_grad():
            noise = torch.randn(z0.shape, generator=g).to(dev)
            zt = scheduler.add_noise(z0, noise, t.to(dev))
            x0 = torch.where(t.view(-1, 1, 1, 1).to(dev) == 0, z0,
                             predict_x0(scheduler, unet(zt, t.to(dev)).sample, zt, t))
        loss = hard_loss(scorer.log_probs(x0, t.to(dev)), y, tgt)
        optimizer_step(loss, opt, sched, bar, step, log, "latent_scorer_hard/loss")
    return scorer.eval()


def finetune_classifier(classifier, images: torch.Tensor, labels: torch.Tensor, hard: HardExamples,
                        steps: int = 400, batch_size: int = 64, lr: float = 2e-4, hard_fraction: float = 0.5,
                        noise_aug: float = 0.1, seed: int = 0, progress: bool = True, log=None):
    """Fine-tune an :class:`emosmc.scorers.EmotionClassifier` on clean ``images`` (``[-1, 1]``,
    true ``labels``) mixed with the mined, decoded particles and their verdicts."""
    g = torch.Generator().manual_seed(seed)
    classifier.train()
    opt = torch.optim.AdamW(classifier.model.parameters(), lr=lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    n_hard = int(batch_size * hard_fraction)
    bar = tqdm(range(steps), desc="classifier (hard examples)", disable=not progress)
    dev = next(classifier.model.parameters()).device
    for step in bar:
        i, j, y, tgt = _mixed_batch(labels, hard, batch_size, n_hard, g, dev)
        x = torch.cat([images[i], hard.images[j]])
        sigma = torch.rand(len(x), 1, 1, 1, generator=g) * noise_aug
        x = (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1).to(dev)
        optimizer_step(hard_loss(classifier.log_probs(x), y, tgt), opt, sched, bar, step, log, "classifier_hard/loss")
    return classifier.eval()


def hard_round(run: AssetRun, r: int, rounds: int) -> dict:
    """Round ``r`` of ``rounds`` (a stage of ``train-assets``): steer fresh identities (seed 100·r) with the
    toy edit settings, label every final particle by the ground truth, and fine-tune the latent scorer (the
    reward that steers) on them. The last round also fine-tunes the judge on originals, VAE reconstructions
    and every round's particles, all with true labels. The guidance classifier is left as it is: fine-tuned
    on the particles it lost 2-5 points of accuracy on clean faces for 1.5-3 points more true flips among
    round 2's particles it was sure of. A round's steered particles are cached in the work folder."""
    from emosmc.pipeline import EmotionEditPipeline
    from emosmc.places import work_dir
    from emosmc.profiles import get_profile, load_classifier

    cache = work_dir() / "toy-hard-examples"
    cache.mkdir(parents=True, exist_ok=True)
    pipe = EmotionEditPipeline.from_profile(get_profile("toy", run.out))
    path = cache / f"round{r}-scale{run.scale:g}-seed{run.seed}.pt"
    t0 = time.time()
    if path.exists():  # mined by an interrupted run of this stage
        hard = torch.load(path, weights_only=False)
    else:
        n = max(2, int(HARD_IDENTITIES * run.scale))
        im, lab, ids, _ = toy_faces(n, TRAIN_SEED + 100 * r)
        pick = source_rows(n)
        hard = mine(pipe, images_to_tensor(im[pick.numpy()]), lab[pick], ids, get_profile("toy").edit.to_dict(),
                    torch.Generator().manual_seed(run.seed + r), progress=run.progress)
        torch.save(hard, path)
    info = {"mined": hard.summary(), "mining_seconds": round(time.time() - t0, 1)}
    for k in range(1, r):
        earlier = cache / f"round{k}-scale{run.scale:g}-seed{run.seed}.pt"
        if earlier.exists():
            hard = hard.cat(torch.load(earlier, weights_only=False))
    with torch.no_grad():
        lat = torch.cat([pipe.encode(b) for b in run.x.split(256)])
    steps = run.steps(600, least=20)
    finetune_latent_scorer(pipe.latent_scorer, pipe.unet, pipe.scheduler, lat, run.labels, hard, steps=steps,
                           seed=run.seed + r, progress=run.progress, log=run.log)
    pipe.latent_scorer.save_pretrained(run.out / "latent_scorer")
    if r == rounds:
        with torch.no_grad():
            rec = torch.cat([pipe.decode(z) for z in lat.split(256)])
        judge = load_classifier(run.out / "judge")
        finetune_classifier(judge, torch.cat([run.x, rec]), run.labels.repeat(2), hard, hard_fraction=0.3,
                            steps=run.steps(400, least=20), seed=run.seed + 50 + r, progress=run.progress, log=run.log)
        judge.save_pretrained(run.out / "judge")
    return {**info, "examples": len(hard), "steps": steps}


def hard_round_stages(rounds: int) -> List[Stage]:
    """The rounds as stages of ``train-assets``, after its own."""
    return [Stage(f"hard_examples_round{r}", partial(hard_round, r=r, rounds=rounds), refines=True)
            for r in range(1, rounds + 1)]


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="the toy assets folder to train (or to continue)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the default data and steps")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    stages = default_stages() + hard_round_stages(a.rounds)
    print(json.dumps(train_assets(Path(a.out), a.scale, a.seed, stages=stages), indent=2))
