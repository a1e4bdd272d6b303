"""``EmotionEditPipeline``: a diffusers-style pipeline that edits the emotion of face images.

    pipe = EmotionEditPipeline.from_profile("toy")
    out = pipe(images, "happy", num_particles=16, generator=torch.Generator().manual_seed(0))
    out = pipe(images, "happy", get_profile("toy").edit)   # a profile's preset (an EditConfig)
    out.images          # (B, 3, H, W) best edit per source, in [-1, 1]
    out.probs           # (B, 7) classifier probabilities of those edits (canonical order)

Components: ``vae`` (diffusers AutoencoderKL), ``unet`` (UNet2DModel), ``scheduler``
(DDPM-family) and ``classifier`` (:class:`emosmc.scorers.EmotionClassifier`).
Every source image gets ``num_particles`` particles; sources and targets are
broadcast against each other, so one image with seven targets is one batched
call.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import torch

from .data import load_image
from .diffusion import decode_latents, encode_images
from .profiles import Profile, get_profile, load_classifier, load_scheduler, load_unet, load_vae
from .edit_config import EditConfig
from .labels import target_indices
from .regions import to_latent_mask
from .scorers import EmotionClassifier, IdentityPenalty, PixelEmotionReward
from .smc import SMCConfig, SMCResult, SMCSampler

__all__ = ["EmotionEditPipeline", "EmotionEditOutput"]


@dataclass
class EmotionEditOutput:
    images: torch.Tensor  # (B, 3, H, W) best particle per source, decoded, in [-1, 1]
    probs: torch.Tensor  # (B, 7) classifier probabilities of `images`
    targets: List[str]
    latents: torch.Tensor  # (B, N, C, h, w) all final particles (scaled latents)
    smc: SMCResult
    source_latents: torch.Tensor  # (B, C, h, w)
    nfe: dict = None  # network evaluations: {"unet": latents through the UNet, "decode": VAE decodes for scoring}
    target_index: torch.Tensor = None  # (B,) canonical indices of `targets`
    regions: Optional[torch.Tensor] = None  # (B, 1, H, W) where the edit could change (region="expression")

    @property
    def target_probs(self) -> torch.Tensor:
        idx = target_indices(self.targets) if self.target_index is None else self.target_index
        return self.probs[torch.arange(len(idx)), idx]


class EmotionEditPipeline:
    def __init__(self, vae, unet, scheduler, classifier: EmotionClassifier, latent_scorer=None, region_detector=None):
        self.vae, self.unet, self.scheduler, self.classifier = vae.eval(), unet.eval(), scheduler, classifier.eval()
        self.latent_scorer = latent_scorer.eval() if latent_scorer is not None else None
        # images (B, 3, H, W) -> (B, 1, H, W) soft mask of the expression region (emosmc.regions); None: none
        self.region_detector = region_detector

    # -- loading -----------------------------------------------------------------
    @classmethod
    def from_profile(cls, profile: Union[str, Profile] = "toy", device=None) -> "EmotionEditPipeline":
        p = get_profile(profile) if isinstance(profile, str) else profile
        ls = p.load("latent_scorer", device) if p.latent_scorer and Path(p.latent_scorer, "config.json").exists() else None
        try:
            det = p.load("region_detector", device)
        except (FileNotFoundError, ImportError, ValueError):
            det = None  # region="expression" then says what is missing
        return cls(p.load("vae", device), p.load("unet", device), p.load("scheduler"), p.load("classifier", device), ls,
                   det)

    @classmethod
    def from_pretrained(cls, path: Union[str, Path], device=None) -> "EmotionEditPipeline":
        path = Path(path)
        dev = torch.device(device) if device else torch.device("cpu")
        ls = None
        if (path / "latent_scorer" / "config.json").exists():
            from .latent_scorer import LatentEmotionScorer

            ls = LatentEmotionScorer.from_pretrained(path / "latent_scorer").to(dev)
        det = None
        if (path / "region_detector" / "config.json").exists():
            from .regions import RegionDetector

            det = RegionDetector.from_pretrained(path / "region_detector").eval().to(dev)
        return cls(load_vae(path / "vae").to(dev), load_unet(path / "unet").to(dev),
                   load_scheduler(path / "scheduler"), load_classifier(path / "classifier").to(dev), ls, det)

    def save_pretrained(self, path: Union[str, Path]) -> None:
        path = Path(path)
        self.vae.save_pretrained(path / "vae")
        self.unet.save_pretrained(path / "unet")
        self.scheduler.save_pretrained(path / "scheduler")
        self.classifier.save_pretrained(path / "classifier")
        if self.latent_scorer is not None:
            self.latent_scorer.save_pretrained(path / "latent_scorer")
        if hasattr(self.region_detector, "save_pretrained"):
            self.region_detector.save_pretrained(path / "region_detector")

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def image_size(self) -> int:
        return int(self.vae.config.sample_size)

    def decode_batch_size(self) -> int:
        """Images per VAE decode (and 4x that per UNet call), worked out once per pipeline and device
        from free memory (:mod:`emosmc.memory`), so that repeated calls batch alike; pass ``chunk_size``
        to fix it (the batching changes results in the last bits)."""
        from .memory import decode_batch_size

        key = (str(self.device), next(self.vae.parameters()).dtype)
        if getattr(self, "_decode_batch", (None, 0))[0] != key:
            self._decode_batch = (key, decode_batch_size(self.device, self.image_size, key[1]))
        return self._decode_batch[1]

    # -- pieces ------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images in ``[-1, 1]`` -> scaled latents (posterior mean times ``scaling_factor``)."""
        return encode_images(self.vae, images)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, chunk_size: Optional[int] = None) -> torch.Tensor:
        """Scaled latents -> images in ``[-1, 1]``, ``chunk_size`` at a time (default: what half the
        free memory holds, :func:`emosmc.memory.decode_batch_size`)."""
        return decode_latents(self.vae, latents, chunk_size)

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images.to(self.device))

    def load_images(self, images, notes: Optional[List[str]] = None) -> torch.Tensor:
        """Paths, a ``(3, H, W)`` / ``(B, 3, H, W)`` tensor in ``[-1, 1]``, or a list of either."""
        if isinstance(images, torch.Tensor):
            x = images[None] if images.dim() == 3 else images
        else:
            items = [images] if isinstance(images, (str, Path)) else list(images)
            x = torch.stack([load_image(i, self.image_size, notes) if isinstance(i, (str, Path)) else i for i in items])
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) in [-1, 1], got shape {tuple(x.shape)}")
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            raise ValueError(f"images must be {self.image_size}x{self.image_size}, got {tuple(x.shape[-2:])}; "
                             "pass file paths to have them converted")
        return x

    # -- the edit ------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        images,
        targets: Union[str, Sequence[str]],
        config: Union[EditConfig, SMCConfig, None] = None,
        *,
        generator: Union[torch.Generator, Sequence[torch.Generator], None] = None,
        progress: bool = True,
        chunk_size: Optional[int] = None,
        **settings,
    ) -> EmotionEditOutput:
        """Edit ``images`` towards ``targets`` with ``config`` (an :class:`~emosmc.edit_config.EditConfig`,
        default: the report's steering with the pixel scorer; a profile's preset is ``profile.edit``), any
        of whose settings may be given as keywords (``num_particles=8``, ``scorer="latent"``).

        ``scorer="pixel"``: the report's reward (decode every particle, run the classifier).
        ``scorer="latent"``: the latent scorer reads the latents directly (no decode while steering);
        the ``final_check`` particles it likes best per row are then decoded and the pixel classifier
        picks among them. On CUDA the UNet runs under fp16 autocast.

        ``region="expression"``: the region detector's mask of each source keeps the source outside the
        brows, eyes and mouth (``out.regions``); ``paste_back`` puts its pixels back there after decoding (and,
        with ``min_change``, where the edit barely changed them).

        ``generator``: one for the whole batch, or a list of one per edit (after broadcasting sources and
        targets): then each edit's result is the same bit for bit alone or in any batch (the UNet, the final
        decode and the classifier then run one edit's particles at a time)."""
        cfg = config if isinstance(config, EditConfig) else EditConfig(config or SMCConfig())
        cfg = cfg.replace(**settings) if settings else cfg
        if cfg.scorer == "latent" and self.latent_scorer is None:
            raise ValueError("scorer='latent' needs a latent scorer: set pipe.latent_scorer "
                             "(emosmc.latent_scorer.LatentEmotionScorer.from_pretrained) or use scorer='pixel'")
        x = self.load_images(images)
        targets = [targets] if isinstance(targets, str) else list(targets)
        tidx = target_indices(targets)  # once, here: unknown names fail, listing the valid ones
        if len(x) == 1 and len(targets) > 1:
            x = x.expand(len(targets), *x.shape[1:])
        elif len(targets) == 1 and len(x) > 1:
            targets, tidx = targets * len(x), tidx.repeat(len(x))
        elif len(targets) != len(x):
            raise ValueError(f"{len(x)} image(s) but {len(targets)} target(s): give one target per image, "
                             "one target for all, or one image for all targets")
        if isinstance(generator, (list, tuple)) and len(generator) != len(targets):
            raise ValueError(f"{len(generator)} generators for {len(targets)} edits: give one per edit, or one")
        per_row = isinstance(generator, (list, tuple))
        one = 1 if per_row else len(x)  # images per encode, detection and classification
        src = torch.cat([self.encode(c) for c in x.split(one)])
        regions = torch.cat([self.regions(c) for c in x.split(one)]) if cfg.region != "none" else None
        chunk_size = chunk_size or self.decode_batch_size()  # particles per decode; 4x that per UNet call
        reward = self._reward(cfg, tidx, chunk_size, src, cfg.num_particles if per_row else None)
        nfe = {"unet": 0}
        latent_region = None if regions is None else to_latent_mask(regions, src.shape[-1])
        model = self._model(nfe, cfg.num_particles if per_row else chunk_size * 4)
        sampler = SMCSampler(self.scheduler, model, reward, cfg.smc, init_latents=src, generator=generator,
                             region=latent_region)
        res = sampler.run(progress=progress)
        paste = (x, regions, cfg.min_change) if cfg.paste_back else None
        if cfg.scorer == "latent" and cfg.final_check > 0:
            best = self._final_check(res, tidx, cfg.final_check, paste, per_row)
            nfe["decode"] = len(targets) * min(cfg.final_check, cfg.num_particles)
        else:
            best = self._paste(self.decode(res.best, 1 if per_row else None), paste)
            nfe["decode"] = reward.num_decodes + len(best)
        probs = torch.cat([self.classify(b) for b in best.split(one)]).cpu()
        return EmotionEditOutput(best, probs, targets, res.particles, res, src, nfe, tidx, regions)

    @torch.no_grad()
    def regions(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)``: where an edit of each image may change (1) and where it keeps the source (0),
        by the region detector run on the images themselves (:mod:`emosmc.regions`)."""
        if self.region_detector is None:
            raise ValueError("region='expression' needs a region detector: set pipe.region_detector (toy: "
                             "emosmc.regions.RegionDetector.from_pretrained(<assets>/region_detector); photos: "
                             "emosmc.regions.MTCNNRegionDetector(), which needs facenet-pytorch) or use region='none'")
        return self.region_detector(images.to(self.device)).float().clamp(0, 1)

    @classmethod
    def _paste(cls, images: torch.Tensor, paste) -> torch.Tensor:
        return images if paste is None else cls.paste(images, *paste)

    @staticmethod
    def paste(images: torch.Tensor, sources: torch.Tensor, regions: torch.Tensor, min_change: float = 0.0) -> torch.Tensor:
        """Decoded edits ``(B, 3, H, W)`` with the sources' own pixels outside the soft ``regions`` (what
        ``paste_back`` does) and, with ``min_change = a > 0``, inside them too where the edit changed a pixel (its
        largest channel) by less than ``a``, blending linearly to the edit's pixel at a change of ``3a``."""
        a = min_change
        src, m = sources.to(images.device), regions.to(images.device)
        if a:
            change = (images - src).abs().amax(1, keepdim=True)
            m = m * ((change - a) / (2 * a)).clamp(0, 1)
        return m * images + (1 - m) * src

    def _reward(self, cfg: EditConfig, tidx: torch.Tensor, chunk_size: int, src: torch.Tensor,
                row: Optional[int] = None):
        """The reward of ``cfg.scorer`` (minus the identity term with ``identity_weight``); ``row``: score one
        edit's ``row`` particles at a time."""
        if cfg.scorer == "latent":
            from .latent_scorer import LatentEmotionReward

            reward = LatentEmotionReward(self.latent_scorer, tidx, **({"chunk_size": row} if row else {}))
        else:
            reward = PixelEmotionReward(self.vae, self.classifier, tidx, chunk_size=row or chunk_size)
        return reward if cfg.identity_weight == 0 else IdentityPenalty(reward, src, cfg.identity_weight)

    def _model(self, nfe: dict, chunk: int):
        """The UNet as the sampler's ``model(z, t)``: counted in ``nfe["unet"]``, run ``chunk`` latents at a
        time (one edit's particles with per-edit generators, so that no edit's numbers depend on another's),
        under fp16 autocast on CUDA."""
        unet, cuda = self.unet, self.device.type == "cuda"

        def model(z, t):
            nfe["unet"] += len(z)
            with torch.autocast("cuda", torch.float16, enabled=cuda):
                return torch.cat([unet(c, t).sample.float() for c in z.split(chunk)])

        return model

    @torch.no_grad()
    def _final_check(self, res: SMCResult, tidx: torch.Tensor, k: int, paste=None, per_row: bool = False) -> torch.Tensor:
        """Decode the ``k`` particles with the best latent score per row; the pixel classifier picks
        the best of them (``res.best_index`` is updated to it)."""
        B, N = res.rewards.shape
        k = min(k, N)
        top = res.rewards.topk(k, dim=1).indices
        rows = torch.arange(B, device=top.device)
        imgs = self.decode(res.particles[rows[:, None], top].flatten(0, 1), k if per_row else None)
        if paste is not None:
            src, m, a = paste
            imgs = self._paste(imgs, (src.repeat_interleave(k, 0), m.repeat_interleave(k, 0), a))
        idx = tidx.to(imgs.device).repeat_interleave(k)
        probs = torch.cat([self.classify(c) for c in imgs.split(k if per_row else len(imgs))])
        p = probs[torch.arange(B * k, device=imgs.device), idx].view(B, k)
        pick = p.argmax(1)
        res.best_index = top[rows, pick.to(top.device)]
        return imgs.view(B, k, *imgs.shape[1:])[torch.arange(B), pick.to(imgs.device)]

    @torch.no_grad()
    def sample(self, num_images: int, num_inference_steps: int = 150,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Unguided samples of the UNet from pure noise (ancestral sampling with the pipeline's scheduler),
        decoded: ``(num_images, 3, H, W)`` in ``[-1, 1]`` -- what the prior draws on its own."""
        from .diffusion import denoise

        if num_images < 1 or num_inference_steps < 1:
            raise ValueError(f"sample needs num_images >= 1 and num_inference_steps >= 1; got {num_images} and "
                             f"{num_inference_steps}")
        c, s = self.unet.config.in_channels, self.unet.config.sample_size
        z = denoise(self.unet, self.scheduler, torch.zeros(num_images, c, s, s), num_inference_steps, 1.0, generator)
        return self.decode(z)

    @torch.no_grad()
    def img2img(self, images, num_inference_steps: int = 250, noise_strength: float = 0.23, num_samples: int = 1,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Unguided img2img (no classifier): ``(B, num_samples, 3, H, W)`` -- the control for steering."""
        x = self.load_images(images)
        out = self(x, ["neutral"] * len(x), num_particles=num_samples, num_inference_steps=num_inference_steps,
                   noise_strength=noise_strength, guidance_scale=0.0, generator=generator, progress=False)
        B, N = out.latents.shape[:2]
        return self.decode(out.latents.reshape(B * N, *out.latents.shape[2:])).view(B, N, 3, *x.shape[-2:])
