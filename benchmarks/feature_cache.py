"""Frozen-mode epochs with and without the feature cache, in one run.

Three frozen runs of one setting, each from an empty cache folder where it matters:
  1. `--no-cache`: every epoch reads the clips (or tokens) and runs the encoders, the
     "building" cost an epoch has without the cache;
  2. cache on, cold: the first pass builds the entries (about `build_seconds`: its total
     less the warm run's), then the epochs train on features;
  3. cache on, warm: the entries exist; nothing is decoded and no encoder runs.
Epoch seconds come from each run's history.csv (training only; dev scoring apart). Prints
one JSON line per run and one with the ratio (no-cache epoch / cached epoch).

usage: python benchmarks/feature_cache.py av [--dialogues 20] [--width 1280 --height 720] [--epochs 3] [--output FILE.jsonl]
       python benchmarks/feature_cache.py text MELD_DIR MODEL_DIR [--epochs 3] [--output FILE.jsonl]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from recognize import ExperimentConfig, train
from recognize.cache import list_entries
from recognize.dataset.meld import read_raw_csv
from recognize.dataset.prepare import RAW_FOLDERS, prepare
from recognize.dataset.synthetic import write_clip, write_synthetic_meld_raw
from recognize.labels import EMOTIONS
from recognize.tiny import write_tiny_videomae, write_tiny_wav2vec2

from jsonl import emit, epoch_seconds, machine, progress_to_stderr


def run(config: ExperimentConfig, name: str, setting: str) -> dict:
    """Train `config` from scratch; its timing as a JSON-ready line."""
    start = time.perf_counter()
    with progress_to_stderr():
        folder = train(config, overwrite=True)
    total = time.perf_counter() - start
    epochs = epoch_seconds(folder)
    return {"benchmark": "feature_cache", "setting": setting, "run": name, "epochs": len(epochs),
            "epoch_seconds": [round(s, 3) for s in epochs], "mean_epoch_seconds": round(statistics.mean(epochs), 4),
            "total_seconds": round(total, 2), "machine": machine()}


def av_setting(workdir: Path, args: argparse.Namespace) -> tuple[ExperimentConfig, str]:
    """Generated MELD-like clips at MELD's size (prepared), tiny Wav2Vec2 and VideoMAE, A+V fused by LMF."""
    raw = write_synthetic_meld_raw(workdir / "raw", seed=0, dialogues={"train": args.dialogues, "dev": 4, "test": 4}, broken=False)
    for split, folder in RAW_FOLDERS.items():  # the generator's clips are thumbnails; MELD's are 720p footage
        for row in read_raw_csv(raw / f"{split}_sent_emo.csv").itertuples(index=False):
            write_clip(raw / folder / f"dia{row.Dialogue_ID}_utt{row.Utterance_ID}.mp4", EMOTIONS.index(row.Emotion.lower()),
                       width=args.width, height=args.height, texture=True)
    data = prepare(raw, workdir / "MELD", workers=1)["output"]
    config = ExperimentConfig(data=str(data), modal="A+V", mode="frozen", audio_model=str(write_tiny_wav2vec2(workdir / "tiny-wav2vec2")),
                              video_model=str(write_tiny_videomae(workdir / "tiny-videomae")), epochs=args.epochs,
                              batch_size=16, output_dir=str(workdir / "checkpoints"))
    return config, (f"A+V LMF, tiny wav2vec2 + tiny VideoMAE, {args.dialogues} generated train dialogues, "
                    f"{args.width}x{args.height} clips")


def text_setting(workdir: Path, args: argparse.Namespace) -> tuple[ExperimentConfig, str]:
    """Real MELD text with a real text encoder."""
    config = ExperimentConfig(data=args.data, modal="T", mode="frozen", text_model=args.model, epochs=args.epochs,
                              batch_size=32, output_dir=str(workdir / "checkpoints"))
    return config, f"T, {Path(args.model).name}, MELD text"


def main() -> None:
    """Parse the arguments, run the no-cache, cold-cache and warm-cache runs, print a JSON line each and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("setting", choices=["av", "text"])
    parser.add_argument("data", nargs="?", help="MELD folder (text)")
    parser.add_argument("model", nargs="?", help="text encoder folder (text)")
    parser.add_argument("--dialogues", type=int, default=20, help="generated train dialogues (av)")
    parser.add_argument("--width", type=int, default=1280, help="generated clips' width (av)")
    parser.add_argument("--height", type=int, default=720, help="generated clips' height (av)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--output", help="also append the JSON lines to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        workdir = Path(work)
        config, setting = (av_setting if args.setting == "av" else text_setting)(workdir, args)
        cache = workdir / "cache"
        fields = {**config.to_dict(), "cache_dir": str(cache)}
        plain = run(ExperimentConfig.from_dict({**fields, "cache": False}), "no cache", setting)
        emit(plain, args.output)
        cold = run(ExperimentConfig.from_dict(fields), "cache, cold (builds the entries)", setting)
        cold["entries"] = len(list_entries(cache))
        emit(cold, args.output)
        warm = run(ExperimentConfig.from_dict(fields), "cache, warm", setting)
        emit(warm, args.output)
    emit({"benchmark": "feature_cache", "setting": setting, "run": "comparison", "machine": machine(),
          "no_cache_epoch_over_cached_epoch": round(plain["mean_epoch_seconds"] / warm["mean_epoch_seconds"], 1),
          "no_cache_total_over_warm_total": round(plain["total_seconds"] / warm["total_seconds"], 2),
          "build_seconds": round(cold["total_seconds"] - warm["total_seconds"], 2)}, args.output)


if __name__ == "__main__":
    main()
