"""Text only, full tuning (ORIGIN.md, text table: the BERT, RoBERTa and MPNet rows).

    python training/text_finetune.py datasets/MELD                              # MPNet
    python training/text_finetune.py datasets/MELD --text-model roberta-base
    python training/text_finetune.py datasets/MELD --text-model bert-base-uncased
"""

from recognize import ExperimentConfig, train
from recognize.scripting import existing_runs, print_test_scores, recipe_arguments, run_script


def main(argv: "list[str] | None" = None) -> None:
    """Fine-tune the whole text encoder and its head, then evaluate on test."""
    args = recipe_arguments(__doc__, argv, text_model="sentence-transformers/all-mpnet-base-v2")
    folder = train(ExperimentConfig(data=args.data, modal="T", task=args.task, mode="full", text_model=args.text_model,
                                    epochs=args.epochs or 4, lr=2e-5, batch_size=args.batch_size, seed=args.seed,
                                    output_dir=args.output_dir), **existing_runs(args))
    print_test_scores(folder)


if __name__ == "__main__":
    run_script(main)
