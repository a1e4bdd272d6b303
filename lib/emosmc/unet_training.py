"""The one UNet training loop, with Accelerate: the real-size UNet on the latent cache
(notebooks/02_train_unet.ipynb) and the toy UNet (:func:`emosmc.training.train_toy_unet`).

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
config), the folder the ``celebahq`` profile loads. Without an ``output_dir`` (the toy
assets' stages) nothing is written: the run's weights come back in the :class:`TrainingRun`.
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
from .tracking import LogFn, wandb_logger

__all__ = ["UNetTrainingConfig", "TrainingRun", "train_unet", "latest_checkpoint", "launch", "ema_decay",
           "ema_update"]


@dataclass
class UNetTrainingConfig:
    """The report's settings by default (AdamW, constant lr 1e-4, batch 32, fp16 on CUDA)."""

    output_dir: Optional[str] = None  # None: no checkpoints, no resume, no final folder, no sample grids
    max_steps: int = 100_000
    batch_size: int = 32  # per process
    learning_rate: float = 1e-4
    lr_warmup_steps: int = 0  # linear warmup
    lr_schedule: str = "constant"  # after the warmup: "constant", or "cosine" (down to 0 at max_steps)
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    ema_warmup: bool = True  # decay min(ema_decay, (1 + step) / (10 + step)); False: ema_decay from the start
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


def _lr_factor(step: int, cfg: UNetTrainingConfig) -> float:
    """The learning rate's multiplier at ``step``: a linear warmup, then constant or a cosine to 0."""
    f = min(1.0, (step + 1) / max(1, cfg.lr_warmup_steps))
    if cfg.lr_schedule == "cosine":
        f *= 0.5 * (1 + math.cos(math.pi * step / max(1, cfg.max_steps)))
    return f


def ema_decay(step: int, cap: float, warmup: bool = True) -> float:
    """The EMA's decay at (0-based) ``step``: ``min(cap, (1 + step) / (10 + step))``, or ``cap`` without warmup."""
    return min(cap, (1 + step) / (10 + step)) if warmup else cap


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """``ema <- decay * ema + (1 - decay) * model``, parameter by parameter (the EMA kept in float32)."""
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p.detach().float(), 1 - decay)


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
               edit_sources: Optional[torch.Tensor] = None, progress: bool = True,
               log: Optional[LogFn] = None) -> TrainingRun:
    """Epsilon-prediction training of ``unet`` on cached, scaled ``latents`` ``(M, C, h, w)``.

    Resumes from the latest checkpoint in ``cfg.output_dir`` or ``cfg.resume_from`` (then keeps
    writing to ``output_dir``). ``vae`` (optional) decodes the sample grids; ``edit_sources``
    (scaled latents) adds a grid of unguided img2img edits at strength 0.5. ``log`` (a
    ``log(dict, step)``) is used instead of the W&B run ``cfg.wandb_project`` would start.
    """
    from accelerate import Accelerator

    mp = cfg.mixed_precision
    if mp == "auto":
        mp = "fp16" if torch.cuda.is_available() else "no"
    acc = Accelerator(mixed_precision=mp)
    out = Path(cfg.output_dir) if cfg.output_dir else None
    if out is not None and acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, cfg))
    ema = copy.deepcopy(unet).float().eval().requires_grad_(False).to(acc.device)
    model, opt, lr_sched = acc.prepare(unet, opt, lr_sched)
    step, losses, seconds, resumed = _resume(acc, cfg, out, ema)
    if vae is not None and acc.is_main_process:
        vae = vae.to(acc.device)  # loaded on the CPU before the launcher; decodes sample grids here
    wandb_log = _wandb_log(cfg, out, resumed) if log is None and acc.is_main_process else None
    log = log or wandb_log
    data = latents.float()
    model.train()
    bar = tqdm(total=cfg.max_steps, initial=step, desc="unet", disable=not (progress and acc.is_main_process))
    t_start, last = time.time() - seconds, resumed
    while step < cfg.max_steps:
        lval = _train_step(acc, model, opt, lr_sched, scheduler, data, cfg, step)
        ema_update(ema, acc.unwrap_model(model), ema_decay(step, cfg.ema_decay, cfg.ema_warmup))
        step += 1
        losses.append((step, round(lval, 6)))
        bar.update(1)
        if step % cfg.log_every == 0:
            bar.set_postfix(loss=f"{lval:.4f}")
            if log:
                log({"unet/loss": lval, "unet/lr": lr_sched.get_last_lr()[0]}, step)
        if out is not None and acc.is_main_process and vae is not None and cfg.sample_every \
                and step % cfg.sample_every == 0:
            _sample_grids(ema, scheduler, vae, cfg, out, step, edit_sources, log)
        if out is not None and (step % cfg.checkpoint_every == 0 or step == cfg.max_steps):
            last = _save_checkpoint(acc, cfg, out, step, model, ema, scheduler, losses, time.time() - t_start)
    bar.close()
    if out is not None and acc.is_main_process:
        ema.save_pretrained(out / "unet")
        scheduler.save_pretrained(out / "unet")
    if wandb_log and hasattr(wandb_log, "run"):
        wandb_log.run.finish()
    acc.wait_for_everyone()
    return TrainingRun(step, losses, last, acc.unwrap_model(model).eval(), ema, time.time() - t_start, resumed)


def _train_step(acc, model, opt, lr_sched, scheduler, data: torch.Tensor, cfg: UNetTrainingConfig, step: int) -> float:
    """One optimiser step on the batch, noise and timesteps of ``step`` (drawn in that order from the step's
    own generator); returns the loss averaged over the processes."""
    g = _step_generator(cfg.seed, step, acc.process_index)
    idx = torch.randint(0, len(data), (cfg.batch_size,), generator=g)
    z0 = data[idx].to(acc.device)
    noise = torch.randn(z0.shape, generator=g).to(acc.device)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(z0),), generator=g).to(acc.device)
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
    return acc.gather(loss.detach()[None]).mean().item()


def _resume(acc, cfg: UNetTrainingConfig, out: Optional[Path], ema):
    """``(step, losses, seconds, checkpoint)`` of the latest checkpoint in ``out`` or ``cfg.resume_from``,
    loaded into the prepared model, optimiser and schedule and into ``ema``; a fresh start without one."""
    ckpt = latest_checkpoint([*([out] if out is not None else []), *cfg.resume_from])
    if ckpt is None:
        return 0, [], 0.0, None
    from diffusers import UNet2DModel

    acc.load_state(str(ckpt / "state"))
    ema.load_state_dict(UNet2DModel.from_pretrained(ckpt / "ema").state_dict())
    state = json.loads((ckpt / "trainer_state.json").read_text())
    acc.print(f"resumed from {ckpt} at step {state['step']}")
    return state["step"], [tuple(x) for x in state["losses"]], state["seconds"], ckpt


def _wandb_log(cfg: UNetTrainingConfig, out: Optional[Path], resumed: Optional[Path]) -> Optional[LogFn]:
    """A W&B logger for ``cfg.wandb_project`` (``None`` without one), continuing the W&B run of the
    checkpoint it resumes from: one W&B run across resumed sessions."""
    if not cfg.wandb_project:
        return None
    id_file = out / "wandb_run_id.txt" if out is not None else None
    run_id = id_file.read_text().strip() if id_file is not None and id_file.exists() else None
    if run_id is None and resumed is not None and (resumed.parent / "wandb_run_id.txt").exists():
        run_id = (resumed.parent / "wandb_run_id.txt").read_text().strip()
    log = wandb_logger(cfg.wandb_project, cfg.run_name, asdict(cfg), dir=str(out) if out else None, run_id=run_id)
    if id_file is not None and hasattr(log, "run"):
        id_file.write_text(log.run.id)
    return log


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
