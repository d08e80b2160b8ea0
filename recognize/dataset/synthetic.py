"""A generated MELD-format folder (`{train,dev,test}_sent_emo.csv`) whose text carries a
known, learnable signal: each utterance mixes filler words with cue words of its emotion
(and, with probability `noise`, of another one). It reproduces MELD's quirks: gaps in
Dialogue_ID and Utterance_ID, Windows-1252 control characters, an empty utterance."""

from pathlib import Path

import numpy as np
import pandas as pd

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
