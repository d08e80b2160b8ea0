"""Video only, the classifier alone on a pretrained ViViT (ORIGIN.md: "V, ViViT, Training
Classification", there scored by 10-fold cross-validation on the dev split).

    python training/video_vivit_classifier.py datasets/MELD

The data folder needs videos/{split}/ (`emotion-recognize prepare`).
"""

from recognize import ExperimentConfig, train
from recognize.scripting import existing_runs, print_test_scores, recipe_arguments, run_script


def main(argv: "list[str] | None" = None) -> None:
    """Freeze ViViT, train the head on its CLS vector, then evaluate on test."""
    args = recipe_arguments(__doc__, argv, video_model="google/vivit-b-16x2-kinetics400")
    folder = train(ExperimentConfig(data=args.data, modal="V", task=args.task, mode="frozen", video_model=args.video_model,
                                    epochs=args.epochs or 8, lr=1e-3, batch_size=args.batch_size, seed=args.seed,
                                    output_dir=args.output_dir), **existing_runs(args))
    print_test_scores(folder)


if __name__ == "__main__":
    run_script(main)
