"""Training the latent UNet on the latent cache with Accelerate (notebooks/02_train_unet.ipynb).

    cfg = UNetTrainingConfig(output_dir="work/unet-run", max_steps=50_000)
    run = train_unet(cfg, latents, unet, scheduler, vae=vae)     # resumes by itself
    launch(train_unet, (cfg, latents, unet, scheduler))          # every GPU (Kaggle T4 x2)

fp16 autocast on CUDA (T4s have no bf16), one process per GPU, EMA weights, a
log to W&B (loss, lr, sample grids; offline without a key), and a checkpoint every
``checkpoint_every`` steps: ``checkpoint-<step>/`` holds ``unet/`` and ``ema/``
(``save_pretrained`` folders), ``state/`` (Accelerate: model, optimizer, lr
schedule, grad scaler, RNG) and ``trainer_state.json`` (step, losses). Each step's
batch, noise and timesteps come from a generator seeded by ``(seed, step, rank)``,
so a run resumed from a checkpoint takes exactly the steps an uninterrupted run
would. The final EMA weights go to ``<output_dir>/unet`` (with the scheduler
config), the folder the ``celebahq`` profile loads.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .diffusion import decode_latents, denoise

__all__ = ["UNetTrainingConfig", "TrainingRun", "train_unet", "latest_checkpoint", "launch"]


@dataclass
class UNetTrainingConfig:
    """The report's settings by default (AdamW, constant lr 1e-4, batch 32, fp16 on CUDA)."""

    output_dir: str
    max_steps: int = 100_000
    batch_size: int = 32  # per process
    learning_rate: float = 1e-4
    lr_warmup_steps: int = 0
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    mixed_precision: str = "auto"  # "auto": fp16 on CUDA, none on CPU; or "no", "fp16", "bf16"
    checkpoint_every: int = 1000
    checkpoints_total_limit: int = 2
    sample_every: int = 1000
    num_samples: int = 16
    sample_steps: int = 50
    log_every: int = 50
    seed: int = 0
    wandb_project: Optional[str] = None  # e.g. "emosmc": log to W&B (offline without a key)
    run_name: Optional[str] = None
    resume_from: List[str] = field(default_factory=list)  # more folders to look for checkpoints in


@dataclass
class TrainingRun:
    """What a run left on disk: the step reached, the losses and the weights."""

    step: int
    losses: List[Tuple[int, float]]
    checkpoint: Optional[Path]
    unet: Optional[torch.nn.Module] = None
    ema: Optional[torch.nn.Module] = None
    seconds: float = 0.0
    resumed_from: Optional[Path] = None

    @classmethod
    def load(cls, output_dir: Union[str, Path], weights: bool = True) -> "TrainingRun":
        """The latest checkpoint of a run (e.g. after :func:`launch`, which returns nothing)."""
        ckpt = latest_checkpoint([output_dir])
        if ckpt is None:
            raise FileNotFoundError(f"no checkpoint-<step> folder in {output_dir}")
        state = json.loads((ckpt / "trainer_state.json").read_text())
        unet = ema = None
        if weights:
            from diffusers import UNet2DModel

            unet, ema = UNet2DModel.from_pretrained(ckpt / "unet"), UNet2DModel.from_pretrained(ckpt / "ema")
        return cls(state["step"], [tuple(x) for x in state["losses"]], ckpt, unet, ema, state.get("seconds", 0.0))


def latest_checkpoint(folders: Sequence[Union[str, Path]]) -> Optional[Path]:
    """The complete ``checkpoint-<step>`` with the highest step in any of ``folders``."""
    best, best_step = None, -1
    for f in folders:
        for c in Path(f).glob("checkpoint-*") if Path(f).is_dir() else []:
            if (c / "trainer_state.json").exists() and c.name.split("-")[-1].isdigit():
                s = int(c.name.split("-")[-1])
                if s > best_step:
                    best, best_step = c, s
    return best


def _step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 64 + rank) % (2**63))


@torch.no_grad()
def _grid_png(images: torch.Tensor, path: Path, ncols: int = 8):
    from PIL import Image

    from .data import to_uint8

    imgs = to_uint8(images)
    n, h, w, _ = imgs.shape
    rows = math.ceil(n / ncols)
    canvas = torch.full((rows * h, ncols * w, 3), 255, dtype=torch.uint8).numpy()
    for i, im in enumerate(imgs):
        r, c = divmod(i, ncols)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = im
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return canvas


def _save_checkpoint(acc, cfg, out: Path, step, model, ema, scheduler, losses, seconds):
    ckpt = out / f"checkpoint-{step}"
    tmp = out / f".tmp-checkpoint-{step}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp / "state"))
    if acc.is_main_process:
        acc.unwrap_model(model).save_pretrained(tmp / "unet")
        ema.save_pretrained(tmp / "ema")
        scheduler.save_pretrained(tmp / "ema")
        (tmp / "trainer_state.json").write_text(json.dumps(
            {"step": step, "losses": losses, "seconds": seconds, "config": asdict(cfg)}))
        shutil.rmtree(ckpt, ignore_errors=True)
        tmp.rename(ckpt)  # a checkpoint is either complete or absent
        old = sorted((c for c in out.glob("checkpoint-*") if c.name.split("-")[-1].isdigit()),
                     key=lambda c: int(c.name.split("-")[-1]))
        for c in old[:-cfg.checkpoints_total_limit]:
            shutil.rmtree(c, ignore_errors=True)
    acc.wait_for_everyone()
    return ckpt


def train_unet(cfg: UNetTrainingConfig, latents: torch.Tensor, unet, scheduler, vae=None,
               edit_sources: Optional[torch.Tensor] = None, progress: bool = True) -> TrainingRun:
    """Epsilon-prediction training of ``unet`` on cached, scaled ``latents`` ``(M, C, h, w)``.

    Resumes from the latest checkpoint in ``cfg.output_dir`` or ``cfg.resume_from`` (then keeps
    writing to ``output_dir``). ``vae`` (optional) decodes the sample grids; ``edit_sources``
    (scaled latents) adds a grid of unguided img2img edits at strength 0.5.
    """
    from accelerate import Accelerator

    from .training import wandb_logger

    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "fp16" if torch.cuda.is_available() else "no"
    acc = Accelerator(mixed_precision=mp)
    out = Path(cfg.output_dir)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    warm = max(1, cfg.lr_warmup_steps)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm))
    ema = copy.deepcopy(unet).float().eval().requires_grad_(False).to(acc.device)
    model, opt, lr_sched = acc.prepare(unet, opt, lr_sched)
    step, losses, seconds, resumed = 0, [], 0.0, None
    ckpt = latest_checkpoint([out, *cfg.resume_from])
    if ckpt is not None:
        from diffusers import UNet2DModel

        acc.load_state(str(ckpt / "state"))
        ema.load_state_dict(UNet2DModel.from_pretrained(ckpt / "ema").state_dict())
        state = json.loads((ckpt / "trainer_state.json").read_text())
        step, losses, seconds, resumed = state["step"], [tuple(x) for x in state["losses"]], state["seconds"], ckpt
        acc.print(f"resumed from {ckpt} at step {step}")
    if vae is not None and acc.is_main_process:
        vae = vae.to(acc.device)  # loaded on the CPU before the launcher; decodes sample grids here
    log = None
    if cfg.wandb_project and acc.is_main_process:
        id_file = out / "wandb_run_id.txt"  # one W&B run across resumed sessions
        run_id = id_file.read_text().strip() if id_file.exists() else None
        if run_id is None and resumed is not None and (resumed.parent / "wandb_run_id.txt").exists():
            run_id = (resumed.parent / "wandb_run_id.txt").read_text().strip()
        log = wandb_logger(cfg.wandb_project, cfg.run_name, asdict(cfg), dir=str(out), run_id=run_id)
        if hasattr(log, "run"):
            id_file.write_text(log.run.id)
    T = scheduler.config.num_train_timesteps
    data = latents.float()
    model.train()
    bar = tqdm(total=cfg.max_steps, initial=step, desc="unet", disable=not (progress and acc.is_main_process))
    t_start = time.time() - seconds
    last = resumed
    while step < cfg.max_steps:
        g = _step_generator(cfg.seed, step, acc.process_index)
        idx = torch.randint(0, len(data), (cfg.batch_size,), generator=g)
        z0 = data[idx].to(acc.device)
        noise = torch.randn(z0.shape, generator=g).to(acc.device)
        t = torch.randint(0, T, (len(z0),), generator=g).to(acc.device)
        zt = scheduler.add_noise(z0, noise, t)
        with acc.autocast():
            pred = model(zt, t).sample
        loss = F.mse_loss(pred.float(), noise)
        acc.backward(loss)
        if cfg.grad_clip:
            acc.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        lr_sched.step()
        opt.zero_grad(set_to_none=True)
        d = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), acc.unwrap_model(model).parameters()):
                pe.lerp_(p.detach().float(), 1 - d)
        step += 1
        lval = acc.gather(loss.detach()[None]).mean().item()
        losses.append((step, round(lval, 6)))
        bar.update(1)
        if log and step % cfg.log_every == 0:
            log({"unet/loss": lval, "unet/lr": lr_sched.get_last_lr()[0]}, step)
            bar.set_postfix(loss=f"{lval:.4f}")
        if acc.is_main_process and vae is not None and cfg.sample_every and step % cfg.sample_every == 0:
            _sample_grids(ema, scheduler, vae, cfg, out, step, edit_sources, log)
        if step % cfg.checkpoint_every == 0 or step == cfg.max_steps:
            last = _save_checkpoint(acc, cfg, out, step, model, ema, scheduler, losses, time.time() - t_start)
    bar.close()
    if acc.is_main_process:
        ema.save_pretrained(out / "unet")
        scheduler.save_pretrained(out / "unet")
        if log and hasattr(log, "run"):
            log.run.finish()
    acc.wait_for_everyone()
    return TrainingRun(step, losses, last, acc.unwrap_model(model).eval(), ema, time.time() - t_start, resumed)


def _sample_grids(ema, scheduler, vae, cfg, out, step, edit_sources, log):
    g = torch.Generator().manual_seed(cfg.seed)
    shape = (cfg.num_samples, ema.config.in_channels, ema.config.sample_size, ema.config.sample_size)
    with torch.no_grad():
        z = denoise(ema, copy.deepcopy(scheduler), torch.zeros(shape), cfg.sample_steps, 1.0, g)
        grids = {"samples": decode_latents(vae, z)}
        if edit_sources is not None:
            z = denoise(ema, copy.deepcopy(scheduler), edit_sources[:cfg.num_samples], cfg.sample_steps, 0.5, g)
            grids["img2img"] = decode_latents(vae, z)
    for name, imgs in grids.items():
        canvas = _grid_png(imgs.float().cpu(), out / name / f"step-{step:07d}.png")
        if log is not None:
            import wandb

            log({f"unet/{name}": wandb.Image(canvas)}, step)


def launch(fn, args: tuple = (), num_processes: Optional[int] = None):
    """Run ``fn(*args)`` on every GPU with ``accelerate.notebook_launcher`` (one process per GPU;
    Kaggle T4 x2), or directly when there is at most one GPU. Touch no CUDA before calling it.
    With several processes the result stays on disk: read it with :meth:`TrainingRun.load`."""
    n = num_processes if num_processes is not None else torch.cuda.device_count()
    if n > 1:
        from accelerate import notebook_launcher

        notebook_launcher(fn, args, num_processes=n)
        return None
    return fn(*args)
