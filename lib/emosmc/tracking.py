"""Experiment tracking: the ``log(dict, step)`` callables the training loops write to, W&B behind one of
them, Kaggle's secrets (where a W&B key comes from on Kaggle), and the fingerprint of the weights that made
a result (so a cached result is not reused with other models).

:func:`wandb_logger` writes to Weights & Biases: online when a key is configured, offline otherwise (also
when going online fails), so a training run never stops for want of a network.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

__all__ = ["LogFn", "nolog", "kaggle_secret", "wandb_logger", "weights_fingerprint"]

LogFn = Callable[[dict, int], None]


def weights_fingerprint(*modules) -> Optional[str]:
    """12 hex digits that change when any weight of the ``torch.nn.Module`` s among ``modules`` changes (their
    names, shapes and, per tensor, a strided sample of 4096 values: cheap on a 113M-parameter UNet). ``None``
    when none of them is a module."""
    import hashlib

    import torch

    h, seen = hashlib.sha1(), False
    for m in modules:
        if not isinstance(m, torch.nn.Module):
            continue
        seen = True
        for name, t in m.state_dict().items():
            flat = t.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 4096)].float().cpu().numpy().tobytes()
            h.update(f"{name}{tuple(t.shape)}".encode())
            h.update(sample)
    return h.hexdigest()[:12] if seen else None


def nolog(d: dict, step: int) -> None:
    """A ``log(dict, step)`` that records nothing."""


def kaggle_secret(name: str) -> Optional[str]:
    """A secret from Kaggle's add-on (Add-ons > Secrets, attached to the notebook), else ``None``."""
    try:
        from kaggle_secrets import UserSecretsClient  # only exists inside Kaggle kernels
    except ImportError:
        return None
    try:
        return UserSecretsClient().get_secret(name)
    except Exception:  # not attached to this notebook, or no such secret
        return None


def wandb_logger(project: str = "emosmc", name: Optional[str] = None, config: Optional[dict] = None,
                 dir: Optional[str] = None, run_id: Optional[str] = None) -> LogFn:
    """A ``log(dict, step)`` that writes to W&B: online when a key is configured (``WANDB_API_KEY``,
    or the Kaggle secret of that name), else offline -- also when going online fails (a key but no
    internet), with a message. ``dir`` holds the run files; ``run_id`` continues an earlier run (a
    resumed training) instead of starting a new one. The W&B run is the logger's ``run`` attribute."""
    import wandb

    if not os.environ.get("WANDB_API_KEY"):
        key = kaggle_secret("WANDB_API_KEY")
        if key:
            os.environ["WANDB_API_KEY"] = key
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    extra = {"id": run_id, "resume": "allow"} if run_id else {}
    if dir:
        Path(dir).mkdir(parents=True, exist_ok=True)
    args = dict(project=project, name=name, config=config or {}, reinit="finish_previous", dir=dir, **extra)
    try:
        run = wandb.init(mode=mode, **args)
    except Exception as err:  # wandb raises its own errors (CommError, ...) when it cannot reach its server
        if mode != "online":
            raise
        print(f"W&B could not go online ({type(err).__name__}: {err}); logging offline into {dir or 'wandb/'} "
              "instead: upload it later with `wandb sync`, or turn the notebook's internet on")
        run = wandb.init(mode="offline", **args)

    def log(d: dict, step: int) -> None:
        run.log(d, step=step)

    log.run = run  # type: ignore[attr-defined]
    return log
