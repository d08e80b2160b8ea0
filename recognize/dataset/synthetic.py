"""A generated MELD-format folder (`{train,dev,test}_sent_emo.csv`) whose text carries a
known, learnable signal: each utterance mixes filler words with cue words of its emotion
(and, with probability `noise`, of another one). It reproduces MELD's quirks: gaps in
Dialogue_ID and Utterance_ID, Windows-1252 control characters, an empty utterance.

`write_synthetic_meld_raw` adds the media in the layout of the original release
(MELD.Raw): one H.264 + AAC mp4 per CSV row whose sound (a tone, `tone_hz`) and picture
(a background colour, `COLOURS`) depend on the row's emotion, and the release's broken
cases (`BROKEN_ROWS`, `broken_cases`)."""

import shutil
from fractions import Fraction
from pathlib import Path
from typing import Callable

import av
import numpy as np
import pandas as pd
import soundfile
from PIL import Image

from recognize.dataset.media import clip_name
from recognize.dataset.meld import SPLITS
from recognize.dataset.prepare import RAW_FOLDERS
from recognize.labels import EMOTIONS

CUES: dict[str, tuple[str, ...]] = {
    "neutral": ("okay", "fine", "sure", "alright"),
    "joy": ("great", "wonderful", "love", "yay"),
    "surprise": ("wow", "whoa", "really", "unbelievable"),
    "anger": ("hate", "furious", "stupid", "enough"),
    "sadness": ("sorry", "miss", "cry", "lonely"),
    "disgust": ("gross", "ew", "disgusting", "yuck"),
    "fear": ("scared", "afraid", "nervous", "help"),
}
"""Emotion -> the words that signal it."""

FILLER: tuple[str, ...] = (
    "i", "you", "we", "the", "a", "it", "is", "was", "that", "this", "to", "of", "and", "in", "on", "with",
    "coffee", "apartment", "today", "tomorrow", "know", "think", "just", "what", "there", "here", "going",
)
SPEAKERS: tuple[str, ...] = ("Rachel", "Ross", "Monica", "Chandler", "Joey", "Phoebe")
SENTIMENT_OF: dict[str, str] = {
    "neutral": "neutral", "joy": "positive", "surprise": "positive",
    "anger": "negative", "sadness": "negative", "disgust": "negative", "fear": "negative",
}
EMOTION_WEIGHTS: tuple[float, ...] = (0.30, 0.16, 0.12, 0.12, 0.12, 0.09, 0.09)
"""Class frequencies, skewed towards neutral as MELD is (less steeply, so that tests learn fast)."""

SPLIT_DIALOGUES: dict[str, int] = {"train": 300, "dev": 60, "test": 60}


def vocabulary() -> list[str]:
    """Every word the generator writes, plus the punctuation it uses."""
    return sorted({*FILLER, *SPEAKERS, *(w for words in CUES.values() for w in words), "don't"}) + [":", ",", ".", "'", "!", "?"]


def utterance(rng: np.random.Generator, emotion: str, noise: float) -> str:
    """One utterance: 3-8 filler words and a cue word of `emotion` (of a random emotion with
    probability `noise`), shuffled."""
    cue_emotion = EMOTIONS[rng.integers(len(EMOTIONS))] if rng.random() < noise else emotion
    words = list(rng.choice(FILLER, size=rng.integers(3, 9))) + [rng.choice(CUES[cue_emotion])]
    rng.shuffle(words)
    return " ".join(words)


def split_rows(split: str, dialogues: int, rng: np.random.Generator, noise: float) -> pd.DataFrame:
    """The rows of one split: `dialogues` dialogues of 2-9 utterances, ids with gaps."""
    rows = []
    dialogue_id = 0
    for _ in range(dialogues):
        dialogue_id += 1 + int(rng.random() < 0.1)  # now and then a dialogue id is skipped
        utterance_id = 0
        for _ in range(rng.integers(2, 10)):
            emotion = EMOTIONS[rng.choice(len(EMOTIONS), p=EMOTION_WEIGHTS)]
            text = utterance(rng, emotion, noise)
            if rng.random() < 0.05:
                text = text.replace("i ", "don\u0092t ", 1) + "\u0085"  # the original release's cp1252 leftovers
            rows.append({
                "Utterance": text, "Speaker": SPEAKERS[rng.integers(len(SPEAKERS))], "Emotion": emotion,
                "Sentiment": SENTIMENT_OF[emotion], "Dialogue_ID": dialogue_id, "Utterance_ID": utterance_id,
                "Season": 1 + dialogue_id % 10, "Episode": 1 + dialogue_id % 24,
                "StartTime": "00:00:01,000", "EndTime": "00:00:03,500",
            })
            utterance_id += 1 + int(rng.random() < 0.05)
    frame = pd.DataFrame(rows)
    frame.loc[len(frame) // 2, "Utterance"] = ""  # MELD has empty utterances; they must not crash anything
    frame.insert(0, "Sr No.", np.arange(1, len(frame) + 1))
    return frame


def write_synthetic_meld(folder: "str | Path", seed: int = 0, noise: float = 0.15,
                         dialogues: "dict[str, int] | None" = None) -> Path:
    """Write a MELD-format folder with the three split CSVs and return its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, count in (dialogues or SPLIT_DIALOGUES).items():
        split_rows(split, count, rng, noise).to_csv(folder / f"{split}_sent_emo.csv", index=False)
    return folder


AUDIO_RATE = 48000
"""The clips' audio: AAC, stereo, 48 kHz, as MELD's."""
COLOURS: tuple[tuple[int, int, int], ...] = (
    (128, 128, 128), (230, 200, 40), (240, 120, 20), (200, 30, 30), (40, 60, 200), (40, 160, 60), (130, 40, 160),
)
"""RGB background of a clip, by emotion index (neutral grey, joy yellow, surprise orange, anger red,
sadness blue, disgust green, fear purple)."""
RAW_DIALOGUES: dict[str, int] = {"train": 3, "dev": 2, "test": 2}
"""Dialogues per split of `write_synthetic_meld_raw` (2-9 clips each)."""
CLIP_SECONDS, CLIP_FPS = 1.0, 8
LONG_SECONDS = 4.0
"""Length of the normal clips and of the one long clip: prepare with a cap between the two to see it reported."""
BROKEN_ROWS: dict[str, tuple[str, int]] = {
    "unreadable": ("train", 0),  # cut to its first third: no moov atom, like train dia125_utt3
    "no_audio": ("train", 1),  # a video stream only
    "missing": ("dev", 0),  # a CSV row with no clip, like dev dia110_utt7
    "one_frame": ("dev", 1),  # one video frame and 1/fps seconds of sound
    "silent": ("test", 0),  # an audio stream of zeros
    "long": ("test", 1),  # LONG_SECONDS long, like the mis-cut test dia38_utt4
}
"""Broken case -> (split, position of its row in the split's CSV), in a folder written with broken=True."""
NO_ROW_CLIP: tuple[str, str] = ("dev", "dia9999_utt0")
"""(split, name) of the clip with no CSV row."""
FINAL_VIDEO_COPIES = 3
"""How many test clips are copied as `final_videos_test{name}.mp4`, like the release's ~130 copies."""


def tone_hz(emotion_index: int) -> float:
    """The pitch of the tone in a clip of emotion `emotion_index`."""
    return 220.0 + 80.0 * emotion_index


def clip_frame(emotion_index: int, index: int, frames: int, width: int, height: int) -> np.ndarray:
    """Picture `index` of a clip of `frames`, (height, width, 3) uint8: the emotion's colour,
    with a white block in the top quarter that crosses from left to right over the clip (the
    bottom half is plain colour)."""
    picture = np.empty((height, width, 3), dtype=np.uint8)
    picture[:] = COLOURS[emotion_index]
    block = max(2, width // 4)
    left = (index * (width - block)) // max(1, frames - 1)
    picture[:max(2, height // 4), left:left + block] = 255
    return picture


def panning_texture(frames: int, width: int, height: int, seed: int) -> np.ndarray:
    """A smooth random texture wide enough to pan 4 pixels a frame for `frames` frames."""
    small = np.random.default_rng(seed).integers(0, 256, (max(1, height // 16), (width + 4 * frames) // 16 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width + 4 * frames, height), Image.BICUBIC))


def tone(emotion_index: int, samples: int, rate: int) -> np.ndarray:
    """(samples,) float32 at `rate` Hz: the emotion's tone (`tone_hz`) at amplitude 0.3."""
    return (0.3 * np.sin(2 * np.pi * tone_hz(emotion_index) * np.arange(samples) / rate)).astype(np.float32)


def clip_sound(emotion_index: int, samples: int, silent: bool) -> np.ndarray:
    """(2, samples) float32 stereo at AUDIO_RATE: the emotion's tone, or zeros."""
    if silent:
        return np.zeros((2, samples), dtype=np.float32)
    return np.repeat(tone(emotion_index, samples, AUDIO_RATE)[None], 2, axis=0)


def write_clip(path: "str | Path", emotion_index: int, seconds: float = CLIP_SECONDS, width: int = 64,
               height: int = 48, fps: int = CLIP_FPS, audio: bool = True, silent: bool = False,
               texture: bool = False) -> Path:
    """Write an mp4 like MELD's: H.264 video (yuv420p, libx264 "veryfast") of the emotion's
    colour with a moving block (`clip_frame`), and unless `audio` is False an AAC stereo
    48 kHz track of its tone (`tone_hz`; zeros when `silent`). `round(seconds * fps)` frames,
    at least one; the sound lasts as long as the frames. With `texture`, the picture is half
    a panning random texture, which costs a decoder about what real footage does (benchmarks)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = max(1, round(seconds * fps))
    step = AUDIO_RATE // fps
    sound = clip_sound(emotion_index, frames * step, silent)
    background = panning_texture(frames, width, height, seed=emotion_index) if texture else None
    with av.open(str(path), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast"}
        sound_stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo") if audio else None
        for index in range(frames):
            picture = clip_frame(emotion_index, index, frames, width, height)
            if background is not None:
                picture = picture // 2 + background[:, 4 * index:4 * index + width] // 2
            container.mux(video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
            if sound_stream is not None:
                container.mux(sound_stream.encode(_audio_frame(sound[:, index * step:(index + 1) * step], index * step)))
        container.mux(video.encode())
        if sound_stream is not None:
            container.mux(sound_stream.encode())
    return path


def _audio_frame(samples: np.ndarray, start: int) -> av.AudioFrame:
    """A planar float stereo frame of `samples` starting at sample `start`."""
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = AUDIO_RATE, start, Fraction(1, AUDIO_RATE)
    return frame


def write_synthetic_meld_raw(folder: "str | Path", seed: int = 0, dialogues: "dict[str, int] | None" = None,
                             broken: bool = True) -> Path:
    """Write a folder in the layout of the original MELD release and return its path: the
    three CSVs (as `write_synthetic_meld`; the first row of each has Windows-1252 leftovers) beside
    `train_splits/`, `dev_splits_complete/` and `output_repeated_splits_test/`, holding a
    `dia{D}_utt{U}.mp4` clip (`write_clip`, CLIP_SECONDS long) per CSV row; `dialogues`
    gives the dialogues of each of the three splits (default RAW_DIALOGUES).

    With `broken`, it also holds the release's kinds of damage (`broken_cases` names them):
    the rows of BROKEN_ROWS, the clip NO_ROW_CLIP that has no CSV row, and FINAL_VIDEO_COPIES
    `final_videos_test*` copies in the test folder."""
    folder = write_synthetic_meld(folder, seed=seed, dialogues=dialogues or RAW_DIALOGUES)
    cases = {case: (split, _row_names(folder, split)[row]) for case, (split, row) in BROKEN_ROWS.items()} if broken else {}
    kind = {(split, name): case for case, (split, name) in cases.items()}
    for split, subfolder in RAW_FOLDERS.items():
        rows = _with_leftovers(folder / f"{split}_sent_emo.csv")
        for name, emotion in zip(_names(rows), rows["Emotion"]):
            _write_case(folder / subfolder / f"{name}.mp4", EMOTIONS.index(emotion), kind.get((split, name)))
    if broken:
        split, name = NO_ROW_CLIP
        write_clip(folder / RAW_FOLDERS[split] / f"{name}.mp4", 0)
        test = folder / RAW_FOLDERS["test"]
        for name in _row_names(folder, "test")[:FINAL_VIDEO_COPIES]:
            shutil.copyfile(test / f"{name}.mp4", test / f"final_videos_test{name}.mp4")
    return folder


def broken_cases(folder: "str | Path") -> dict[str, tuple[str, list[str]]]:
    """The damaged clips of a folder written by `write_synthetic_meld_raw(broken=True)`:
    case -> (split, names). The cases are those of BROKEN_ROWS (one clip name each), "no_row"
    (NO_ROW_CLIP) and "final_videos" (the file names of the copies)."""
    cases = {case: (split, [_row_names(folder, split)[row]]) for case, (split, row) in BROKEN_ROWS.items()}
    cases["no_row"] = (NO_ROW_CLIP[0], [NO_ROW_CLIP[1]])
    copies = [f"final_videos_test{name}.mp4" for name in _row_names(folder, "test")[:FINAL_VIDEO_COPIES]]
    cases["final_videos"] = ("test", copies)
    return cases


def _write_case(path: Path, emotion_index: int, case: "str | None") -> None:
    """Write the clip of one CSV row, damaged as `case` says (None: a normal clip)."""
    if case == "missing":
        return
    if case == "long":
        write_clip(path, emotion_index, seconds=LONG_SECONDS)
    elif case == "one_frame":
        write_clip(path, emotion_index, seconds=1 / CLIP_FPS)
    else:
        write_clip(path, emotion_index, audio=case != "no_audio", silent=case == "silent")
    if case == "unreadable":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 3])


def _with_leftovers(path: Path) -> pd.DataFrame:
    """Give the first row of a CSV the original release's Windows-1252 leftovers (U+0092 for
    an apostrophe, U+0085 for an ellipsis), whatever the random rows hold; return the rows."""
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows.loc[0, "Utterance"] = f"don\u0092t {rows.loc[0, 'Utterance']}\u0085"
    rows.to_csv(path, index=False)
    return rows


def _row_names(folder: "str | Path", split: str) -> list[str]:
    """The clip names of a split's CSV rows, in file order."""
    return _names(pd.read_csv(Path(folder) / f"{split}_sent_emo.csv", dtype=str, keep_default_na=False))


def _names(rows: pd.DataFrame) -> list[str]:
    """dia{D}_utt{U} for each row of a raw MELD CSV frame."""
    return [clip_name(int(d), int(u)) for d, u in zip(rows["Dialogue_ID"], rows["Utterance_ID"])]


JOINT_LABELS: tuple[str, str] = ("neutral", "joy")
"""The two emotions of `write_joint_meld`: neutral when text and audio agree, joy when they differ."""
JOINT_AUDIO_RATE = 16000
"""The sample rate of `write_joint_meld`'s flac files, as `prepare` writes them."""


def write_joint_meld(folder: "str | Path", seed: int = 0, dialogues: "dict[str, int] | None" = None) -> Path:
    """Write a prepared MELD folder (the three CSVs and `audios/{split}/dia{D}_utt{U}.flac`,
    16 kHz mono, CLIP_SECONDS long) whose label needs text and audio together, and return
    its path. Each row's utterance carries a cue word of one of JOINT_LABELS and its audio
    the tone of one of them, drawn independently; the emotion is the first label when the
    two agree and the second when they differ (an exclusive or), so either modality alone
    says nothing about it."""
    def exclusive_or(rng: np.random.Generator, split: str, count: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        text_cue, audio_cue = rng.integers(0, 2, count), rng.integers(0, 2, count)
        return text_cue, audio_cue, [JOINT_LABELS[int(t != a)] for t, a in zip(text_cue, audio_cue)]

    return _write_cued_meld(folder, seed, dialogues, exclusive_or)


def write_agreeing_meld(folder: "str | Path", seed: int = 0, dialogues: "dict[str, int] | None" = None,
                        flipped: float = 0.0) -> Path:
    """Write a prepared MELD folder (as `write_joint_meld`) whose utterance cue and audio
    tone both say the row's emotion, one of JOINT_LABELS, and return its path. With
    `flipped`, that share of the training rows whose emotion is the second label are
    labelled with the first: label noise that a student learning from labels alone follows,
    and a teacher trained on clean labels does not. Utterances and clips depend on `seed`
    alone, so two folders of one seed differ only in those training labels (dev and test
    stay clean)."""
    flips = np.random.default_rng([seed, 2])

    def agreeing(rng: np.random.Generator, split: str, count: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        cues = rng.integers(0, 2, count)
        flip = flips.random(count) < flipped if split == "train" else np.zeros(count, dtype=bool)
        return cues, cues, [JOINT_LABELS[0] if f else JOINT_LABELS[cue] for cue, f in zip(cues, flip)]

    return _write_cued_meld(folder, seed, dialogues, agreeing)


def _write_cued_meld(folder: "str | Path", seed: int, dialogues: "dict[str, int] | None",
                     cues_of: "Callable[[np.random.Generator, str, int], tuple[np.ndarray, np.ndarray, list[str]]]") -> Path:
    """A prepared MELD folder of JOINT_LABELS rows: `cues_of(rng, split, rows)` gives each
    row's text cue and audio cue (indices into JOINT_LABELS) and its emotion; the utterance
    carries a cue word of the text cue, the 16 kHz flac clip the tone of the audio cue."""
    folder = write_synthetic_meld(folder, seed=seed, noise=0.0, dialogues=dialogues or RAW_DIALOGUES)
    rng = np.random.default_rng([seed, 1])
    samples = round(CLIP_SECONDS * JOINT_AUDIO_RATE)
    for split in SPLITS:
        path = folder / f"{split}_sent_emo.csv"
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
        text_cue, audio_cue, emotions = cues_of(rng, split, len(rows))
        rows["Utterance"] = [utterance(rng, JOINT_LABELS[cue], noise=0.0) for cue in text_cue]
        rows["Emotion"] = emotions
        rows["Sentiment"] = [SENTIMENT_OF[emotion] for emotion in rows["Emotion"]]
        rows.to_csv(path, index=False)
        audios = folder / "audios" / split
        audios.mkdir(parents=True, exist_ok=True)
        for name, cue in zip(_names(rows), audio_cue):
            soundfile.write(audios / f"{name}.flac", tone(EMOTIONS.index(JOINT_LABELS[cue]), samples, JOINT_AUDIO_RATE), JOINT_AUDIO_RATE)
    return folder
