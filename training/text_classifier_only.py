"""Text only, the classifier alone on the pretrained encoder (ORIGIN.md, text table:
MPNet "Training Classification").

    python training/text_classifier_only.py datasets/MELD
"""

from recognize import ExperimentConfig, train
from recognize.scripting import existing_runs, print_test_scores, recipe_arguments, run_script


def main(argv: "list[str] | None" = None) -> None:
    """Freeze the pretrained text encoder, train the head, then evaluate on test."""
    args = recipe_arguments(__doc__, argv, text_model="sentence-transformers/all-mpnet-base-v2")
    folder = train(ExperimentConfig(data=args.data, modal="T", task=args.task, mode="frozen", text_model=args.text_model,
                                    epochs=args.epochs or 8, lr=1e-3, batch_size=args.batch_size, seed=args.seed,
                                    output_dir=args.output_dir), **existing_runs(args))
    print_test_scores(folder)


if __name__ == "__main__":
    run_script(main)
