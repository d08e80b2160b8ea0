"""Generated MELD-format media: clips decode with PyAV as H.264 + AAC mp4s whose picture
colour and sound pitch follow the label, and a MELD.Raw folder holds exactly the clips and
broken cases it says it does."""

from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import soundfile

from recognize.dataset.prepare import RAW_FOLDERS
from recognize.dataset.synthetic import (AUDIO_RATE, BROKEN_ROWS, COLOURS, CUES, FINAL_VIDEO_COPIES, JOINT_LABELS,
                                         LONG_SECONDS, NO_ROW_CLIP, broken_cases, tone_hz, write_clip, write_joint_meld,
                                         write_synthetic_meld_raw)
from recognize.labels import EMOTIONS


def decode(path: Path) -> tuple[list[np.ndarray], np.ndarray]:
    """Every video frame (RGB) and the audio (channels, samples) of a clip."""
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    with av.open(str(path)) as container:
        sound = [frame.to_ndarray() for frame in container.decode(audio=0)] if container.streams.audio else []
    return frames, np.concatenate(sound, axis=1) if sound else np.zeros((0, 0))


def test_clip_is_h264_and_aac_in_mp4(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "clip.mp4", 2, seconds=1.5, width=80, height=64, fps=10)

    with av.open(str(path)) as container:
        assert container.format.name.split(",")[0] == "mov"
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.codec_context.name, video.codec_context.pix_fmt, video.width, video.height) == ("h264", "yuv420p", 80, 64)
        assert (audio.codec_context.name, audio.rate, audio.codec_context.layout.name) == ("aac", AUDIO_RATE, "stereo")
    frames, sound = decode(path)
    assert len(frames) == 15 and frames[0].shape == (64, 80, 3)
    assert sound.shape[0] == 2 and 1.5 * AUDIO_RATE <= sound.shape[1] < 1.5 * AUDIO_RATE + 1024  # AAC pads its last frame


@pytest.mark.parametrize("label", range(len(EMOTIONS)))
def test_colour_and_pitch_follow_the_label(tmp_path: Path, label: int) -> None:
    frames, sound = decode(write_clip(tmp_path / "clip.mp4", label))

    colour = frames[len(frames) // 2][24:].reshape(-1, 3).mean(axis=0)  # bottom half: no moving block
    distances = [np.abs(colour - np.array(c)).max() for c in COLOURS]
    assert np.argmin(distances) == label and distances[label] < 12
    spectrum = np.abs(np.fft.rfft(sound[0]))
    assert abs(np.argmax(spectrum) * AUDIO_RATE / sound.shape[1] - tone_hz(label)) < 3


def test_block_moves_across_the_clip(tmp_path: Path) -> None:
    frames, _ = decode(write_clip(tmp_path / "clip.mp4", 4))

    bright = [np.flatnonzero(frame[:12].min(axis=(0, 2)) > 200) for frame in frames]  # white columns, top quarter
    assert bright[0][0] == 0 and bright[-1][-1] == 63
    assert all(a[0] < b[0] for a, b in pairwise(bright))


def test_clip_without_audio_silent_and_one_frame(tmp_path: Path) -> None:
    with av.open(str(write_clip(tmp_path / "mute.mp4", 1, audio=False))) as container:
        assert not container.streams.audio and len(container.streams.video) == 1
    _, sound = decode(write_clip(tmp_path / "silent.mp4", 1, silent=True))
    assert sound.shape[1] >= AUDIO_RATE and np.abs(sound).max() == 0
    frames, sound = decode(write_clip(tmp_path / "one.mp4", 1, seconds=1 / 8))
    assert len(frames) == 1 and AUDIO_RATE / 8 <= sound.shape[1] < AUDIO_RATE / 8 + 1024


def test_raw_folder_has_a_clip_per_row_and_the_broken_cases(tmp_path: Path) -> None:
    folder = write_synthetic_meld_raw(tmp_path / "MELD.Raw")
    cases = broken_cases(folder)

    assert set(cases) == {*BROKEN_ROWS, "no_row", "final_videos"}
    assert cases["no_row"] == (NO_ROW_CLIP[0], [NO_ROW_CLIP[1]]) and len(cases["final_videos"][1]) == FINAL_VIDEO_COPIES
    for split, subfolder in RAW_FOLDERS.items():
        rows = pd.read_csv(folder / f"{split}_sent_emo.csv", dtype=str, keep_default_na=False)
        expected = {f"dia{d}_utt{u}.mp4" for d, u in zip(rows["Dialogue_ID"], rows["Utterance_ID"])}
        if split == cases["missing"][0]:
            expected -= {f"{name}.mp4" for name in cases["missing"][1]}
        if split == cases["no_row"][0]:
            expected |= {f"{name}.mp4" for name in cases["no_row"][1]}
        if split == "test":
            expected |= set(cases["final_videos"][1])
        assert sorted(p.name for p in (folder / subfolder).iterdir()) == sorted(expected)
    clip = {case: folder / RAW_FOLDERS[split] / f"{names[0]}.mp4" for case, (split, names) in cases.items() if case in BROKEN_ROWS}
    with pytest.raises(av.InvalidDataError):
        av.open(str(clip["unreadable"]))
    with av.open(str(clip["no_audio"])) as container:
        assert not container.streams.audio
    with av.open(str(clip["long"])) as container:
        assert container.duration / 1e6 == pytest.approx(LONG_SECONDS, abs=0.05)
    assert len(decode(clip["one_frame"])[0]) == 1
    assert np.abs(decode(clip["silent"])[1]).max() == 0


def test_raw_folder_without_broken_cases_is_whole(tmp_path: Path) -> None:
    folder = write_synthetic_meld_raw(tmp_path / "MELD.Raw", dialogues={"train": 1, "dev": 1, "test": 1}, broken=False)

    for split, subfolder in RAW_FOLDERS.items():
        rows = pd.read_csv(folder / f"{split}_sent_emo.csv", dtype=str, keep_default_na=False)
        names = sorted(f"dia{d}_utt{u}.mp4" for d, u in zip(rows["Dialogue_ID"], rows["Utterance_ID"]))
        assert sorted(p.name for p in (folder / subfolder).iterdir()) == names
        for name in names:
            with av.open(str(folder / subfolder / name)) as container:
                assert container.streams.audio and container.streams.video


def test_joint_folder_labels_are_the_exclusive_or_of_the_text_cue_and_the_tone(tmp_path):
    folder = write_joint_meld(tmp_path / "joint", seed=0, dialogues={"train": 6, "dev": 2, "test": 2})

    agreements = []
    for split in ("train", "dev", "test"):
        rows = pd.read_csv(folder / f"{split}_sent_emo.csv", dtype=str, keep_default_na=False)
        for text, emotion, dialogue, utterance in zip(rows["Utterance"], rows["Emotion"], rows["Dialogue_ID"], rows["Utterance_ID"]):
            text_cue = [i for i, label in enumerate(JOINT_LABELS) if set(text.split()) & set(CUES[label])]
            wave, rate = soundfile.read(folder / "audios" / split / f"dia{dialogue}_utt{utterance}.flac")
            peak_hz = np.abs(np.fft.rfft(wave)).argmax() * rate / len(wave)
            audio_cue = [i for i, label in enumerate(JOINT_LABELS) if abs(peak_hz - tone_hz(EMOTIONS.index(label))) < 2]
            assert rate == 16000 and len(text_cue) == 1 and len(audio_cue) == 1
            assert emotion == JOINT_LABELS[int(text_cue[0] != audio_cue[0])]
            agreements.append((text_cue[0], audio_cue[0]))
    assert len(set(agreements)) == 4  # every combination occurs: neither cue alone decides the label
