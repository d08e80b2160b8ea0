"""Several seeds of one setting: `train --seeds 1,2,3` writes `{run_name}/seed-{s}/` per seed
and `{run_name}/aggregate.json` (mean and sample standard deviation of each score over the
seeds); `eval` on such a folder evaluates every seed."""

import re
from pathlib import Path
from typing import Any

from recognize.checkpoint import CONFIG
from recognize.errors import RecognizeError
from recognize.metrics import SCORES, mean_and_std

AGGREGATE = "aggregate.json"
SEED_FOLDER = re.compile(r"seed-(-?\d+)")
"""The name of one seed's folder inside a setting folder; its group is the seed."""


def parse_seeds(text: str) -> list[int]:
    """"1,2,3" -> [1, 2, 3]; RecognizeError for anything but distinct integers, 0 or more."""
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"\d+", p) for p in parts):
        raise RecognizeError(f"--seeds: '{text}' is not a comma-separated list of integers 0 or more, e.g. 1,2,3")
    seeds = [int(p) for p in parts]
    if len(set(seeds)) != len(seeds):
        raise RecognizeError(f"--seeds: '{text}' repeats a seed")
    return seeds


def seed_folders(folder: "str | Path") -> list[Path]:
    """The `seed-{s}` checkpoint folders inside a setting folder, by seed ([] when none)."""
    found = [p.parent for p in Path(folder).glob(f"seed-*/{CONFIG}") if SEED_FOLDER.fullmatch(p.parent.name)]
    return sorted(found, key=seed_of)


def seed_of(folder: "str | Path") -> int:
    """The seed of a `seed-{s}` folder."""
    return int(SEED_FOLDER.fullmatch(Path(folder).name).group(1))


def seed_member(folder: "str | Path", seed: int) -> str:
    """`folder/seed-{seed}` when `folder` is a setting folder holding that seed, else `folder`:
    so each seed of a later stage starts from the same seed of the earlier one."""
    member = Path(folder) / f"seed-{seed}"
    return str(member) if (member / CONFIG).is_file() else str(folder)


def aggregate(per_seed: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Per split ("dev", "test", or a bare metrics dict under "scores"), the mean, sample
    standard deviation (0 for one seed) and values of each of SCORES over the seeds
    (fractions in [0, 1], as in metrics.json)."""
    def summary(metrics: list[dict[str, Any]]) -> dict[str, Any]:
        out = {}
        for score in SCORES:
            values = [m[score] for m in metrics]
            mean, std = mean_and_std(values)
            out[score] = {"mean": mean, "std": 0.0 if std is None else std, "values": values}
        return out

    seeds = sorted(per_seed)
    result: dict[str, Any] = {"seeds": seeds}
    splits = [s for s in ("dev", "test") if all(s in per_seed[seed] for seed in seeds)]
    for split in splits:
        result[split] = summary([per_seed[seed][split] for seed in seeds])
    if not splits:
        result["scores"] = summary([per_seed[seed] for seed in seeds])
    return result


def run_label(folder: "str | Path") -> str:
    """A checkpoint folder's name, with its setting's for one seed of several: "T--ET(x)/seed-1"."""
    folder = Path(folder)
    return f"{folder.parent.name}/{folder.name}" if SEED_FOLDER.fullmatch(folder.name) else folder.name
