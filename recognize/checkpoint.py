"""Checkpoint folders on disk: atomic writes (temp name, then rename), and reading back
only JSON and safetensors."""

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from recognize import __version__
from recognize.config import ExperimentConfig
from recognize.errors import RecognizeError, first_line
from recognize.labels import LABELS

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
LAST_WEIGHTS = "last.safetensors"
"""The last epoch's weights, beside the best epoch's WEIGHTS, in a run trained with --keep-last."""
METRICS = "metrics.json"
HISTORY = "history.csv"
STATE = "state"


def _umask() -> int:
    """The process's file-creation mask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()
"""The mode a plainly created file gets here (0o644 under the usual umask); atomic_write's
temp files start as the owner's only, so the written file is given this mode."""


def atomic_write(path: "str | Path", write: Callable[[Path], None]) -> None:
    """Call `write(temp_path)` for a temp file beside `path`, then rename it over `path`
    with the mode a plainly created file would have; an interrupted write leaves `path`
    as it was. A device or pipe (/dev/stdout) is written to directly; a path that cannot
    be written (a folder, a read-only disk) is a one-line RecognizeError."""
    path = Path(path)
    if path.is_dir():
        raise RecognizeError(f"{path}: is a folder; give a file name")
    if path.exists() and not path.is_file():  # a device or a pipe (/dev/stdout): written to, never replaced
        try:
            write(path)
        except OSError as error:
            raise _write_failure(path, error) from None
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _write_failure(path, error) from None
    os.close(handle)
    try:
        write(Path(temp))
        os.chmod(temp, FILE_MODE)
        os.replace(temp, path)
    except BaseException as error:
        Path(temp).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _write_failure(path, error) from None
        raise


def _write_failure(path: Path, error: OSError) -> RecognizeError:
    """The one-line error for a file that cannot be written (a read-only or full disk, a
    file where a folder should be)."""
    return RecognizeError(f"{path}: cannot write ({error.strerror or first_line(error)})")


def write_json(path: "str | Path", data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"))


def read_json(path: "str | Path") -> Any:
    """Read a JSON file, with a one-line error for a missing or malformed one."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecognizeError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise RecognizeError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    except UnicodeDecodeError:
        raise RecognizeError(f"{path}: not valid JSON (not UTF-8 text)") from None


def save_tensors(tensors: dict[str, torch.Tensor], path: Path, metadata: "dict[str, str] | None" = None) -> None:
    """safetensors' `save_file`, with its I/O failures (a full disk) raised as the OSError
    they are, which `atomic_write` turns into a one-line error naming the file."""
    try:
        save_file(tensors, str(path), metadata)
    except SafetensorError as error:
        if "I/O error" not in str(error):
            raise
        raise OSError(str(error).split("I/O error: ", 1)[1]) from None


def write_weights(path: "str | Path", tensors: dict[str, torch.Tensor]) -> None:
    """Save tensors as safetensors, atomically (contiguous CPU copies)."""
    cpu = {name: t.detach().to("cpu").contiguous() for name, t in tensors.items()}
    atomic_write(path, lambda p: save_tensors(cpu, p))


def link_file(source: "str | Path", path: "str | Path") -> None:
    """Give `source` a second name `path`, atomically: a hard link (no bytes written), or a
    copy on a file system without them. Safe because files here are only ever replaced
    whole (`atomic_write` renames), never changed in place."""
    def link(temp: Path) -> None:
        temp.unlink()
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
    atomic_write(path, link)


def read_weights(path: "str | Path") -> dict[str, torch.Tensor]:
    """Load a safetensors file, with a one-line error for a missing or damaged one."""
    if not Path(path).is_file():
        raise RecognizeError(f"{path}: weights file not found")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise RecognizeError(f"{path}: damaged weights file ({error})") from None


def write_rows(path: "str | Path", rows: list[dict[str, Any]]) -> None:
    """Write dict rows as CSV (header from the first row's keys), atomically."""
    def write(temp: Path) -> None:
        with open(temp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    atomic_write(path, write)


def checkpoint_record(config: ExperimentConfig, extra: dict[str, Any]) -> dict[str, Any]:
    """What config.json holds: the experiment, the label map, the package version and `extra`."""
    return {
        "experiment": config.to_dict(),
        "run_name": config.run_name,
        "labels": list(LABELS[config.task]),
        "version": __version__,
        **extra,
    }


def not_a_checkpoint(folder: Path) -> RecognizeError:
    """The error for a folder without config.json given as a checkpoint: a --seeds setting
    folder is named as one, with the seeds to choose from."""
    from recognize.seeds import seed_folders  # seeds imports this module

    if seeds := seed_folders(folder):
        return RecognizeError(f"{folder}: holds one run per seed ({', '.join(p.name for p in seeds)}); "
                              f"give one of them, e.g. {seeds[0]}")
    return RecognizeError(f"{folder}: not a checkpoint folder (no {CONFIG})")


def check_finished(folder: Path) -> None:
    """Fail unless the run in `folder` has finished (its metrics.json written): until then
    its model.safetensors holds only the best epoch so far."""
    if not (folder / METRICS).is_file():
        raise RecognizeError(f"{folder}: the run has not finished (no {METRICS}: interrupted, or still training); "
                             "`emotion-recognize train` with its flags and --resume finishes it")


def read_checkpoint_config(folder: "str | Path") -> tuple[ExperimentConfig, dict[str, Any]]:
    """The ExperimentConfig and whole record of a finished or interrupted checkpoint folder;
    RecognizeError naming config.json when it cannot be read, or its label list is not its
    task's classes in the order `recognize.labels` fixes (outputs are named by that list)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RecognizeError(f"{folder}: checkpoint folder not found")
    if not (folder / CONFIG).is_file():
        raise not_a_checkpoint(folder)
    record = read_json(folder / CONFIG)
    if "experiment" not in record:
        raise RecognizeError(f"{folder / CONFIG}: no 'experiment' section; not written by emotion-recognize")
    try:
        config = ExperimentConfig.from_dict(record["experiment"])
    except RecognizeError as error:
        raise RecognizeError(f"{folder / CONFIG}: {error}") from None
    except (TypeError, AttributeError) as error:  # a value of the wrong kind, e.g. "epochs": "x"
        raise RecognizeError(f"{folder / CONFIG}: its 'experiment' section has a value of the wrong type ({error})") from None
    expected = list(LABELS[config.task])
    if record.get("labels") != expected:  # outputs are named by it: another order would name every class wrongly
        raise RecognizeError(f"{folder / CONFIG}: its 'labels' {record.get('labels')} are not the {config.task} classes "
                             f"in the order the head was trained with, {expected}")
    return config, record
