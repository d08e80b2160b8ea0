"""`emotion-recognize prepare`: turn a MELD download into the folder the toolkit reads.

The source is the original release (MELD.Raw: the three CSVs beside `train_splits/`,
`dev_splits_complete/` and `output_repeated_splits_test/`) or a folder already in the
toolkit's layout (`videos/{train,dev,test}/`). The output folder receives

    {train,dev,test}_sent_emo.csv       MELD's columns, Utterance and Speaker repaired (`repair_text`)
    audios/{split}/dia{D}_utt{U}.flac   16 kHz mono (channels averaged), decoded and resampled by PyAV,
                                        at most --max-seconds
    videos/{split}/dia{D}_utt{U}.mp4    symbolic links to the source clips (every CSV row's clip)
    prepare-report.json                 what became of every clip, by CATEGORIES

Prepared in place (output = source), the CSVs and clips are left as they are; only
`audios/` (and, from MELD.Raw, `videos/`' links) are added. Safe to run again: a flac
already there is kept and counted as skipped, each flac is written under a temp name and
renamed, and the temp files a killed run leaves behind are removed first. A flac that
exists is never re-extracted, so a second run must use the same --max-seconds (checked
against the earlier report); delete `audios/` to extract again with another cap.
"""

import os
import re
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
import soundfile
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from recognize.checkpoint import atomic_write, read_json, write_json
from recognize.dataset.audio import NoAudioStream, decode_audio
from recognize.dataset.media import MEDIA_FOLDER, clip_name
from recognize.dataset.meld import SPLITS, read_raw_csv, csv_path, load_split, repair_text
from recognize.errors import RecognizeError

RAW_FOLDERS: dict[str, str] = {"train": "train_splits", "dev": "dev_splits_complete", "test": "output_repeated_splits_test"}
"""Split -> its clip folder in the original release (MELD.Raw)."""
AUDIOS, VIDEOS = MEDIA_FOLDER["A"][0], MEDIA_FOLDER["V"][0]
SAMPLE_RATE = 16000
DEFAULT_MAX_SECONDS = 60.0
"""Audio cap: MELD's clips last 2.5 s (median), 8 s (95th percentile); a few mis-cut ones last minutes."""
SILENCE_PEAK = 1e-3
"""A flac whose largest absolute sample is under this (-60 dBFS) is reported as silent."""
REPORT = "prepare-report.json"
CLIP_FILE = re.compile(r"dia(\d+)_utt(\d+)\.mp4")
LEFTOVER = ".dia*_utt*.*.tmp"
"""Temp files of this module's atomic writes (flac files, video links) that a killed run leaves behind."""

CATEGORIES: dict[str, str] = {
    "extracted": "flac written by this run",
    "skipped": "flac already there from an earlier run, kept",
    "missing": "CSV row with no clip",
    "unreadable": "clip that cannot be decoded (e.g. no moov atom): no flac",
    "no_audio": "clip with no audio stream, or an empty one: no flac",
    "silent": "flac (extracted or skipped) whose peak is under -60 dBFS",
    "over_cap": "audio reaching --max-seconds (extracted or skipped): the flac holds only its first max-seconds",
    "no_row": "dia{D}_utt{U}.mp4 clip with no CSV row: neither extracted nor linked",
    "ignored": "other .mp4 files, e.g. the test folder's final_videos_test* copies (file names): neither extracted nor linked",
}
"""Report category -> what it lists. Each lists clip names (dia{D}_utt{U}) by split, in
(Dialogue_ID, Utterance_ID) order; "silent" and "over_cap" are subsets of "extracted" plus
"skipped"; the clips of CSV rows (all but "missing") are linked into videos/."""


@dataclass
class SplitPlan:
    """The clips of one split: each CSV row's source clip (row order) and what does not match."""

    clips: dict[str, Path]
    missing: list[str] = field(default_factory=list)
    no_row: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ClipOutcome:
    """What became of one clip: status is "extracted", "skipped", "unreadable" or "no_audio"."""

    status: str
    silent: bool = False
    over_cap: bool = False
    error: str = ""


def prepare(source: "str | Path", output: "str | Path | None" = None, workers: int | None = None,
            max_seconds: float | None = None) -> dict[str, Any]:
    """Prepare the MELD download `source` at `output` (default: in place) as the module
    docstring describes, with `workers` processes (default: up to 4, by the machine's cores)
    and audio cropped to `max_seconds` (default DEFAULT_MAX_SECONDS). Returns the report,
    also written to `output/prepare-report.json`. Raises RecognizeError for a bad source,
    output or setting."""
    start = time.perf_counter()
    source, output = Path(source), Path(output if output is not None else source)
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    max_seconds = DEFAULT_MAX_SECONDS if max_seconds is None else max_seconds
    _check_settings(output, workers, max_seconds)
    layout, folders = find_layout(source)
    plans = {split: plan_split(folders[split], load_split(source, split)) for split in SPLITS}
    if output.resolve() != source.resolve():  # in place, the CSVs are left as they are
        for split in SPLITS:
            write_csv(source, output, split)
    removed = _make_folders(output)
    for split, plan in plans.items():
        for name, clip in plan.clips.items():
            link_to(clip, output / VIDEOS / split / f"{name}.mp4")
    jobs = [((split, name), clip, output / AUDIOS / split / f"{name}.flac")
            for split, plan in plans.items() for name, clip in plan.clips.items()]
    outcomes = _extract_all(jobs, workers, max_seconds)
    report = {"source": str(source.resolve()), "layout": layout, "output": str(output.resolve()),
              "sample_rate": SAMPLE_RATE, "max_seconds": max_seconds, "removed_temp_files": removed,
              **_tally(plans, outcomes), "seconds": round(time.perf_counter() - start, 3)}
    write_json(output / REPORT, report)
    return report


def find_layout(source: Path) -> tuple[str, dict[str, Path]]:
    """The layout of the MELD folder `source`, "MELD.Raw" or "videos", and each split's clip
    folder; RecognizeError when it has neither, or only part of one."""
    expected = (f"expected MELD.Raw ({', '.join(f + '/' for f in RAW_FOLDERS.values())} beside the CSVs) "
                f"or {VIDEOS}/{{{','.join(SPLITS)}}}/")
    if not source.is_dir():
        raise RecognizeError(f"{source}: folder not found ({expected})")
    layouts = {"MELD.Raw": {split: source / folder for split, folder in RAW_FOLDERS.items()},
               VIDEOS: {split: source / VIDEOS / split for split in SPLITS}}
    for layout, folders in layouts.items():
        absent = [str(folder.relative_to(source)) + "/" for folder in folders.values() if not folder.is_dir()]
        if len(absent) < len(folders):
            if absent:
                raise RecognizeError(f"{source}: {layout} layout without {', '.join(absent)} ({expected})")
            return layout, folders
    raise RecognizeError(f"{source}: no clip folders ({expected})")


def plan_split(folder: Path, rows: pd.DataFrame) -> SplitPlan:
    """Match the .mp4 files of `folder` with the CSV rows of a split (`load_split`'s frame)."""
    files = {path.name for path in folder.glob("*.mp4") if path.is_file()}
    names = [clip_name(d, u) for d, u in zip(rows["dialogue_id"], rows["utterance_id"])]
    plan = SplitPlan(clips={name: folder / f"{name}.mp4" for name in names if f"{name}.mp4" in files},
                     missing=[name for name in names if f"{name}.mp4" not in files])
    others = files - {f"{name}.mp4" for name in names}
    matches = sorted(filter(None, map(CLIP_FILE.fullmatch, others)), key=lambda m: (int(m[1]), int(m[2])))
    plan.no_row = [match[0].removesuffix(".mp4") for match in matches]
    plan.ignored = sorted(name for name in others if not CLIP_FILE.fullmatch(name))
    return plan


def write_csv(source: Path, output: Path, split: str) -> None:
    """Copy a split's CSV from `source` to `output`, with MELD's columns and rows as they
    are but Utterance and Speaker repaired (`repair_text`), atomically."""
    frame = read_raw_csv(csv_path(source, split))
    for column in ("Utterance", "Speaker"):
        frame[column] = frame[column].fillna("").map(repair_text)
    atomic_write(csv_path(output, split), lambda temp: frame.to_csv(temp, index=False))


def remove_leftovers(folder: Path) -> int:
    """Delete the temp files a killed run left in `folder`; return how many there were."""
    leftovers = list(folder.glob(LEFTOVER))
    for path in leftovers:
        path.unlink(missing_ok=True)
    return len(leftovers)


def _make_folders(output: Path) -> int:
    """Create `output`'s audios/{split} and videos/{split} folders, remove the temp files a
    killed run left there, and return how many there were."""
    folders = [output / kind / split for kind in (AUDIOS, VIDEOS) for split in SPLITS]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    return sum(map(remove_leftovers, folders))


def link_to(origin: Path, link: Path) -> None:
    """Make `link` a symbolic link to the absolute, resolved path of `origin` (a clip or a
    folder), atomically; a link pointing elsewhere is re-pointed. A link that already points
    there is left alone, and so is a real file or folder at `link` (the clip itself when
    preparing in place)."""
    target = origin.resolve()
    if link.is_symlink() and link.resolve() == target or link.exists() and not link.is_symlink():
        return
    temp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    temp.unlink(missing_ok=True)
    temp.symlink_to(target)
    os.replace(temp, link)


def prepare_clip(clip: Path, flac: Path, max_seconds: float) -> ClipOutcome:
    """Extract the audio of `clip` to `flac` (16 kHz mono, at most `max_seconds`), or keep
    `flac` when it exists and reads; say what happened. Decode errors are outcomes, not
    exceptions."""
    limit = max(1, round(max_seconds * SAMPLE_RATE))
    if flac.is_file():
        try:
            return _outcome("skipped", soundfile.read(flac, dtype="float32")[0], limit)
        except soundfile.LibsndfileError:
            pass  # damaged by something else than this module (its writes are atomic): extract it again
    try:
        samples = decode_audio(clip, limit, SAMPLE_RATE)
    except NoAudioStream:
        return ClipOutcome("no_audio")
    except (av.FFmpegError, OSError) as error:
        return ClipOutcome("unreadable", error=getattr(error, "strerror", None) or str(error))
    atomic_write(flac, lambda temp: write_flac(temp, samples))
    return _outcome("extracted", samples, limit)


def write_flac(path: Path, samples: np.ndarray) -> None:
    """Write mono float samples to `path` as 16-bit FLAC at SAMPLE_RATE (whatever its suffix)."""
    soundfile.write(path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def summary_table(report: dict[str, Any]) -> Table:
    """A rich table of the report's counts, by split and in total."""
    title = escape(f"prepared {report['output']} from {report['layout']} in {report['seconds']:.1f} s")
    table = Table(title=title, title_justify="left")
    for column in ("clips", *SPLITS, "total"):
        table.add_column(column, justify="left" if column == "clips" else "right")
    for category, by_split in report["clips"].items():
        table.add_row(category, *(str(len(by_split[split])) for split in SPLITS), str(report["counts"][category]))
    return table


def _check_settings(output: Path, workers: int, max_seconds: float) -> None:
    """One-line errors for bad settings, and for a cap other than the one `output` was prepared with."""
    if workers < 1:
        raise RecognizeError(f"--workers: must be at least 1, got {workers}")
    if not max_seconds > 0:
        raise RecognizeError(f"--max-seconds: must be positive, got {max_seconds:g}")
    if output.exists() and not output.is_dir():
        raise RecognizeError(f"{output}: exists and is not a folder")
    previous = read_json(output / REPORT).get("max_seconds") if (output / REPORT).is_file() else None
    if previous is not None and previous != max_seconds:
        raise RecognizeError(f"{output}: prepared with --max-seconds {previous:g}; run again with it, "
                             f"or delete {output / AUDIOS} to extract with {max_seconds:g}")


def _outcome(status: str, samples: np.ndarray, limit: int) -> ClipOutcome:
    """The outcome of a clip whose flac holds `samples`: silent? cut at the cap?"""
    peak = float(np.abs(samples).max()) if len(samples) else 0.0
    return ClipOutcome(status, silent=peak < SILENCE_PEAK, over_cap=len(samples) >= limit)


def _extract_all(jobs: list[tuple[tuple[str, str], Path, Path]], workers: int,
                 max_seconds: float) -> dict[tuple[str, str], ClipOutcome]:
    """Run `prepare_clip` on every (key, clip, flac) job, in `workers` processes."""
    if workers == 1:
        return _collect(((key, prepare_clip(clip, flac, max_seconds)) for key, clip, flac in jobs), len(jobs))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # the workers start here, before the progress bar's thread does
        futures = {pool.submit(prepare_clip, clip, flac, max_seconds): key for key, clip, flac in jobs}
        return _collect(((futures[future], future.result()) for future in as_completed(futures)), len(jobs))


def _collect(outcomes: Iterable[tuple[tuple[str, str], ClipOutcome]], total: int) -> dict[tuple[str, str], ClipOutcome]:
    """Gather the outcomes, with a progress bar on a terminal."""
    console = Console(stderr=True)
    progress = Progress(TextColumn("[bold]prepare"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, transient=True, disable=not console.is_terminal)
    gathered = {}
    with progress:
        task = progress.add_task("clips", total=total)
        for key, outcome in outcomes:
            gathered[key] = outcome
            progress.advance(task)
    return gathered


def _tally(plans: dict[str, SplitPlan], outcomes: dict[tuple[str, str], ClipOutcome]) -> dict[str, Any]:
    """The report's "counts", "clips" (category -> split -> names) and "errors" (split -> name -> decode error)."""
    clips: dict[str, dict[str, list[str]]] = {category: {split: [] for split in SPLITS} for category in CATEGORIES}
    errors: dict[str, dict[str, str]] = {split: {} for split in SPLITS}
    for split, plan in plans.items():
        clips["missing"][split], clips["no_row"][split], clips["ignored"][split] = plan.missing, plan.no_row, plan.ignored
        for name in plan.clips:
            outcome = outcomes[(split, name)]
            clips[outcome.status][split].append(name)
            for category, flagged in (("silent", outcome.silent), ("over_cap", outcome.over_cap)):
                if flagged:
                    clips[category][split].append(name)
            if outcome.error:
                errors[split][name] = outcome.error
    counts = {category: sum(map(len, by_split.values())) for category, by_split in clips.items()}
    return {"counts": counts, "clips": clips, "errors": errors}
