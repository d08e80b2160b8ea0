"""Shared fixtures: a generated MELD-format folder and a tiny BERT, both offline, and a
feature cache of the tests' own."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from recognize.dataset.synthetic import vocabulary, write_synthetic_meld  # noqa: E402
from recognize.tiny import write_tiny_bert  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def shared_feature_cache(tmp_path_factory) -> Path:
    """The feature cache of fixtures shared by several tests (module or session scope): a
    fresh folder, never the user's."""
    folder = tmp_path_factory.mktemp("shared-feature-cache")
    os.environ["EMOTION_RECOGNIZE_CACHE"] = str(folder)
    return folder


@pytest.fixture(autouse=True)
def feature_cache(tmp_path_factory, monkeypatch) -> Path:
    """The feature cache of the runs a test makes itself: a folder of that test's own, so no
    test is served entries another one built, whatever order they run in."""
    folder = tmp_path_factory.mktemp("feature-cache")
    monkeypatch.setenv("EMOTION_RECOGNIZE_CACHE", str(folder))
    return folder


@pytest.fixture(scope="session")
def meld_dir(tmp_path_factory) -> Path:
    """A small MELD-format folder whose text carries a learnable emotion signal."""
    return write_synthetic_meld(tmp_path_factory.mktemp("data") / "MELD", seed=0)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) saved as a model folder."""
    return write_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert", vocabulary())
