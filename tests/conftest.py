"""Fixtures shared by the test files."""
import pytest
from PIL import Image

from emosmc.pipeline import EmotionEditPipeline
from emosmc.toy.faces import render, sample_identity


@pytest.fixture(scope="session")
def pipe():
    """The bundled toy pipeline, loaded once. Do not change it: a test that fine-tunes or swaps a model
    builds its own (``EmotionEditPipeline.from_profile("toy")``)."""
    return EmotionEditPipeline.from_profile("toy")


@pytest.fixture()
def face_png(tmp_path):
    """A 64x64 toy face (identity 42, sad) as a PNG file."""
    path = tmp_path / "face.png"
    Image.fromarray(render(sample_identity(42), "sad")).save(path)
    return path
