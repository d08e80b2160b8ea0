"""Two-stage text training on real MELD: full tuning, then the classifier alone on the tuned
encoder ("Full Tuning -> Training Classification"), against single-stage full tuning, with
the same seeds, in one run.

Stage 1 of each seed *is* the single-stage run; stage 2 starts from its best epoch
(`--init-from`, encoder and head), freezes the encoder and trains the head. Both are tested
on the test split. Prints one JSON line per seed and stage, then one summary line (mean and
sample standard deviation of the two-stage minus single-stage differences).

usage: python benchmarks/two_stage.py MELD_DIR MODEL_DIR [--task emotion] [--seeds 1,2,3]
       [--epochs 4] [--lr 5e-5] [--stage2-epochs 4] [--stage2-lr 1e-3] [--batch-size 32]
       [--output FILE.jsonl]
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from recognize import ExperimentConfig, train
from recognize.config import backbone_name
from recognize.labels import LABELS

from jsonl import emit, machine, progress_to_stderr, run_scores
from stages import CLASSIFIER_STAGE, next_stage


def run_stage(config: ExperimentConfig, stage: str, args: argparse.Namespace) -> tuple[Path, dict]:
    """Train `config`; return its folder and one JSON-ready result line."""
    start = time.perf_counter()
    with progress_to_stderr():
        folder = train(config)
    seconds = time.perf_counter() - start
    return folder, {
        "benchmark": "two_stage", "stage": stage, "model": backbone_name(args.model), "task": args.task,
        "mode": config.mode, "epochs": config.epochs, "lr": config.learning_rate, "batch_size": config.batch_size,
        "seed": config.seed, **run_scores(folder), "seconds": round(seconds, 1), "machine": machine(),
    }


def main() -> None:
    """Parse the arguments, train both stages for each seed, print a JSON line per seed and stage, then the summary."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data")
    parser.add_argument("model")
    parser.add_argument("--task", default="emotion", choices=list(LABELS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--stage2-epochs", type=int, default=CLASSIFIER_STAGE["epochs"])
    parser.add_argument("--stage2-lr", type=float, default=CLASSIFIER_STAGE["lr"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", help="also append the JSON lines to this file")
    args = parser.parse_args()
    differences: dict[str, list[float]] = {"test_accuracy": [], "test_weighted_f1": []}
    with tempfile.TemporaryDirectory() as workdir:
        for seed in (int(s) for s in args.seeds.split(",")):
            single = ExperimentConfig(data=args.data, modal="T", task=args.task, mode="full", text_model=args.model,
                                      epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, seed=seed,
                                      output_dir=str(Path(workdir) / f"seed-{seed}"))
            stage1, first = run_stage(single, "full", args)
            emit(first, args.output)
            second_config = next_stage(single, stage1, **{**CLASSIFIER_STAGE, "epochs": args.stage2_epochs,
                                                          "lr": args.stage2_lr})
            _, second = run_stage(second_config, "full -> classifier", args)
            emit(second, args.output)
            for key in differences:
                differences[key].append(second[key] - first[key])
    summary = {"benchmark": "two_stage", "stage": "summary", "model": backbone_name(args.model), "task": args.task,
               "seeds": args.seeds, "machine": machine()}
    for key, values in differences.items():
        summary[f"{key}_difference_mean"] = round(statistics.mean(values), 2)
        summary[f"{key}_difference_std"] = round(statistics.stdev(values), 2) if len(values) > 1 else 0.0
    emit(summary, args.output)


if __name__ == "__main__":
    main()
