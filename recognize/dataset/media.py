"""Where each row's audio and video clips are, and which of them can be used.

A prepared MELD folder keeps `audios/{split}/dia{D}_utt{U}.flac` and
`videos/{split}/dia{D}_utt{U}.mp4` beside the CSVs. Before a run, every clip a split
needs is probed (its header opened, a flac's last sample read, an mp4's top-level boxes
checked to lie within the file; nothing decoded): a missing, unreadable or truncated clip
is found then, not half-way through an epoch.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import av
import pandas as pd
import soundfile

MEDIA_FOLDER: dict[str, tuple[str, str]] = {"A": ("audios", "flac"), "V": ("videos", "mp4")}
"""Modality -> (folder beside the CSVs, file extension)."""
MP4_SUFFIXES: frozenset[str] = frozenset({".mp4", ".m4v", ".mov"})
"""Files laid out as ISO base media boxes, which `mp4_complete` can check."""


@dataclass
class MediaIndex:
    """One modality's clips for the rows of a split: a path per row (None where the clip
    cannot be used), a length per row (seconds of audio; 1 for video), and what was wrong."""

    paths: list[Optional[Path]]
    lengths: list[float]
    missing: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """Counts and (up to 20) ids of the missing and unreadable clips, for metrics files."""
        return {"missing": len(self.missing), "unreadable": len(self.unreadable),
                "examples": (self.missing + self.unreadable)[:20]}


def clip_name(dialogue_id: int, utterance_id: int) -> str:
    """MELD's clip name for an utterance: dia{D}_utt{U}."""
    return f"dia{dialogue_id}_utt{utterance_id}"


def index_media(root: "str | Path", split: str, rows: pd.DataFrame, modality: str) -> MediaIndex:
    """Find and probe the `modality` ("A" or "V") clip of every row of `split`."""
    folder, extension = MEDIA_FOLDER[modality]
    probe = _audio_seconds if modality == "A" else _video_ok
    index = MediaIndex(paths=[], lengths=[])
    for dialogue, utterance in zip(rows["dialogue_id"], rows["utterance_id"]):
        name = clip_name(dialogue, utterance)
        path = Path(root) / folder / split / f"{name}.{extension}"
        length = probe(path) if path.is_file() else None
        if length is None:
            (index.unreadable if path.is_file() else index.missing).append(name)
        index.paths.append(path if length is not None else None)
        index.lengths.append(length or 0.0)
    return index


def _audio_seconds(path: Path) -> Optional[float]:
    """The duration of an audio file from its header, or None when it cannot be read, is
    empty, or ends before the header says (its last sample is read: a flac cut short fails)."""
    try:
        with soundfile.SoundFile(str(path)) as handle:
            if handle.frames <= 0:
                return None
            handle.seek(handle.frames - 1)
            if len(handle.read(1)) != 1:
                return None
            return handle.frames / handle.samplerate
    except RuntimeError:  # soundfile.LibsndfileError and kin
        return None


def _video_ok(path: Path) -> Optional[float]:
    """1.0 when the file opens as a container with a video stream (and, for an mp4, holds
    the whole of its media data), else None."""
    if path.suffix.lower() in MP4_SUFFIXES and not mp4_complete(path):
        return None
    try:
        with av.open(str(path)) as container:
            return 1.0 if container.streams.video else None
    except (av.FFmpegError, OSError):
        return None



def mp4_complete(path: Path) -> bool:
    """Whether an mp4 file holds the whole of its `moov` (the index) and `mdat` (the media
    data) boxes, walking the top-level box headers (4-byte size, 4-byte type; size 1: a
    64-bit size follows; size 0: the box runs to the end of the file). A copy cut short
    ends inside one of them: with the index first (a "faststart" file) its header still
    opens, and the frames it lost would only fail to decode half-way through an epoch."""
    size = path.stat().st_size
    seen: set[bytes] = set()
    position = 0
    with path.open("rb") as handle:
        while position + 8 <= size and seen != {b"moov", b"mdat"}:
            handle.seek(position)
            header = handle.read(16)
            length, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if length == 1 and len(header) == 16:
                length = int.from_bytes(header[8:16], "big")
            elif length == 0:
                length = size - position
            if length < 8 or position + length > size:
                return False
            if kind in (b"moov", b"mdat"):
                seen.add(kind)
            position += length
    return seen == {b"moov", b"mdat"}
