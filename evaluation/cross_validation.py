"""K-fold cross-validation over the dialogues of one split (ORIGIN.md: ViViT, Training
Classification, 10-fold on the dev split): each fold tested once, another fold picking the
best epoch, the rest training; prints each fold and the mean ± std, and writes
{output-dir}/cv-{split}-{K}/cross-validation.json.

    python evaluation/cross_validation.py datasets/MELD --modal V --mode frozen --split dev --folds 10
"""

import argparse

from recognize import ExperimentConfig
from recognize.crossval import cross_validate
from recognize.metrics import SCORES
from recognize.report import SCORE_TITLES
from recognize.scripting import ScriptHelpFormatter, run_script, score_line


def main(argv: "list[str] | None" = None) -> None:
    """Parse the options, run the folds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=ScriptHelpFormatter)
    parser.add_argument("data", nargs="?", default="datasets/MELD", help="MELD folder")
    parser.add_argument("--split", default="dev", choices=["train", "dev", "test"], help="the split to fold")
    parser.add_argument("--folds", type=int, default=10, help="folds, by dialogue")
    parser.add_argument("--modal", default="V", help="modalities, e.g. T+A")
    parser.add_argument("--mode", default="frozen", choices=["full", "lora", "frozen", "T", "L", "F"], help="training mode")
    parser.add_argument("--label-type", dest="task", default="emotion", choices=["emotion", "sentiment"], help="task")
    parser.add_argument("--text-model", help="text encoder: model id or local folder", default="sentence-transformers/all-mpnet-base-v2")
    parser.add_argument("--audio-model", help="audio encoder: model id or local folder", default="facebook/wav2vec2-base")
    parser.add_argument("--video-model", help="video encoder: model id or local folder", default="google/vivit-b-16x2-kinetics400")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of each fold's run")
    parser.add_argument("--lr", type=float, default=None, help="default: the mode's")
    parser.add_argument("--batch-size", type=int, default=32, help="samples per optimiser step")
    parser.add_argument("--seed", type=int, default=42, help="seeds the folds and every fold's training")
    parser.add_argument("--output-dir", default="checkpoints", help="cv-{split}-{K}/ goes under it")
    args = parser.parse_args(argv)
    config = ExperimentConfig(data=args.data, modal=args.modal, mode=args.mode, task=args.task, text_model=args.text_model,
                              audio_model=args.audio_model, video_model=args.video_model, epochs=args.epochs, lr=args.lr,
                              batch_size=args.batch_size, seed=args.seed, output_dir=args.output_dir)
    summary = cross_validate(config, split=args.split, folds=args.folds)
    for fold in summary["per_fold"]:
        print(f"fold {fold['fold']} ({fold['rows']} rows): {score_line(fold)}")
    print(f"{summary['run_name']}, {args.folds}-fold on {args.split}: " + "  ".join(
        f"{SCORE_TITLES[name]} {100 * summary[name]['mean']:.2f} ± {100 * summary[name]['std']:.2f}%" for name in SCORES))


if __name__ == "__main__":
    run_script(main)
