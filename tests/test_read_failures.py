"""A clip that passes the probe before a run but fails to decode when read (its frames
damaged inside a whole file) is zero-filled wherever it is read, and counted as such: in
training and in the dev evaluations as in the test split's, with one warning per clip."""

import json
import logging
from pathlib import Path

import pytest

from recognize import ExperimentConfig, train
from recognize.dataset.meld import load_split
from recognize.dataset.synthetic import write_agreeing_meld
from recognize.tiny import write_tiny_wav2vec2


def damage_frames(clip: Path) -> None:
    """Overwrite 200 bytes a third of the way into a flac: its header and last frame stay
    whole (the probe passes), the frames between no longer decode."""
    content = bytearray(clip.read_bytes())
    content[len(content) // 3:len(content) // 3 + 200] = b"\x55" * 200
    clip.write_bytes(bytes(content))


@pytest.fixture(scope="module")
def damaged_meld(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A prepared MELD folder with audio whose first train clip and second dev clip are
    damaged inside; and those clips' names by split."""
    data = write_agreeing_meld(tmp_path_factory.mktemp("damaged") / "MELD", seed=0,
                               dialogues={"train": 6, "dev": 3, "test": 2})
    damaged = {}
    for split, row in (("train", 0), ("dev", 1)):
        first = load_split(data, split).iloc[row]
        damaged[split] = f"dia{first['dialogue_id']}_utt{first['utterance_id']}"
        damage_frames(data / "audios" / split / f"{damaged[split]}.flac")
    return data, damaged


@pytest.fixture(scope="module")
def speech_model(tmp_path_factory) -> Path:
    return write_tiny_wav2vec2(tmp_path_factory.mktemp("models") / "tiny-wav2vec2")


@pytest.mark.parametrize("mode", ["full", "frozen"])  # frozen: read once, into the feature cache
def test_training_counts_and_names_the_clips_that_failed_to_decode_in_train_and_dev(damaged_meld, speech_model, tmp_path,
                                                                                    caplog, mode):
    data, damaged = damaged_meld
    config = ExperimentConfig(data=str(data), modal="A", audio_model=str(speech_model), mode=mode, epochs=2,
                              batch_size=8, workers=0, output_dir=str(tmp_path))

    with caplog.at_level(logging.WARNING, logger="recognize.dataset.loader"):
        folder = train(config)

    def failed(split: str) -> dict:
        return {"A": {"missing": 0, "unreadable": 0, "failed_on_read": 1, "examples": [damaged[split]]},
                "rows_skipped": 0, "rows_zero_filled": 1}
    assert json.loads((folder / "metrics.json").read_text())["missing_media"] == {
        "train": failed("train"), "dev": failed("dev"),
        "test": {"A": {"missing": 0, "unreadable": 0, "failed_on_read": 0, "examples": []}, "rows_skipped": 0,
                 "rows_zero_filled": 0}}
    # each clip warned about once, though read in both epochs (the dev clip also in the test of the epochs' model)
    warnings = sorted(record.getMessage() for record in caplog.records)
    assert [line.split(": ")[0] for line in warnings] == [str(data / "audios" / split / f"{damaged[split]}.flac")
                                                          for split in ("dev", "train")]
    assert all(line.endswith("; the sample is zero-filled and masked") and "cannot read audio" in line for line in warnings)
