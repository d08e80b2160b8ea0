"""Probing clips before a run (`recognize.dataset.media`): a clip cut short is found then,
even where its header still opens (an mp4 with its index first, a flac), and not
half-way through an epoch; whole clips pass."""

from pathlib import Path

import av
import numpy as np
import pandas as pd
import soundfile

from recognize.dataset.media import index_media, mp4_complete

ROWS = pd.DataFrame({"dialogue_id": [0, 0], "utterance_id": [0, 1]})
"""Two utterances: dia0_utt0 (whole) and dia0_utt1 (cut short)."""


def write_faststart_mp4(path: Path, frames: int = 24) -> Path:
    """An H.264 mp4 with its index (`moov`) before the media data, as web-ready files are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(frames):  # noise: frames that do not compress to nothing
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))))
        container.mux(stream.encode())
    return path


def cut(path: Path, keep: int) -> None:
    """Keep the first `keep` bytes of `path`."""
    path.write_bytes(path.read_bytes()[:keep])


def test_an_mp4_cut_inside_its_media_data_is_unreadable_though_its_header_opens(tmp_path):
    folder = tmp_path / "videos" / "train"
    whole = write_faststart_mp4(folder / "dia0_utt0.mp4")
    short = write_faststart_mp4(folder / "dia0_utt1.mp4")
    data = short.read_bytes()
    cut(short, data.index(b"mdat") + 1000)
    with av.open(str(short)) as container:  # what a header probe sees: a video stream, all its frames listed
        assert container.streams.video[0].frames == 24

    index = index_media(tmp_path, "train", ROWS, "V")

    assert (mp4_complete(whole), mp4_complete(short)) == (True, False)
    assert index.unreadable == ["dia0_utt1"] and index.paths == [whole, None]


def test_a_box_that_runs_to_the_end_of_the_file_is_complete(tmp_path):
    path = write_faststart_mp4(tmp_path / "clip.mp4")
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") - 4  # the media data box is the last one of a faststart file
    data[start:start + 4] = (0).to_bytes(4, "big")  # size 0: "up to the end of the file"
    path.write_bytes(bytes(data))
    assert mp4_complete(path)
    cut(path, start + 6)  # not even a whole box header left
    assert not mp4_complete(path)


def test_a_flac_cut_short_is_unreadable_though_its_header_gives_every_frame(tmp_path):
    folder = tmp_path / "audios" / "train"
    folder.mkdir(parents=True)
    wave = np.random.default_rng(0).normal(scale=0.1, size=16000).astype(np.float32)
    for name in ("dia0_utt0", "dia0_utt1"):
        soundfile.write(folder / f"{name}.flac", wave, 16000)
    short = folder / "dia0_utt1.flac"
    cut(short, short.stat().st_size // 2)
    assert soundfile.info(str(short)).frames == 16000

    index = index_media(tmp_path, "train", ROWS, "A")

    assert index.unreadable == ["dia0_utt1"]
    assert index.lengths == [1.0, 0.0]
