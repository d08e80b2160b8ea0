"""MPNet: full tuning, then the classifier alone on top of the tuned encoder
(ORIGIN.md, text table, "Full Tuning -> Training Classification").

    python training/text_mpnet_two_stage.py datasets/MELD

  1. T full tuning                              checkpoints/text_mpnet_two_stage/T--ET(all-mpnet-base-v2)
  2. the classifier alone on stage 1's encoder  checkpoints/text_mpnet_two_stage/T--EF(all-mpnet-base-v2)

The stages go in a folder of their own, apart from text_finetune.py's and
text_classifier_only.py's runs of the same settings.
"""

from pathlib import Path

from recognize import ExperimentConfig, train
from recognize.scripting import existing_runs, print_test_scores, recipe_arguments, run_script, stages_folder


def main(argv: "list[str] | None" = None) -> None:
    """Stage 1 tunes everything; stage 2 starts from stage 1 and trains the head alone."""
    args = recipe_arguments(__doc__, argv, text_model="sentence-transformers/all-mpnet-base-v2")
    stage1 = train(ExperimentConfig(data=args.data, modal="T", task=args.task, mode="full", text_model=args.text_model,
                                    epochs=args.epochs or 4, lr=2e-5, batch_size=args.batch_size, seed=args.seed,
                                    output_dir=stages_folder(args, Path(__file__).stem)), **existing_runs(args))
    stage2 = train(ExperimentConfig.from_checkpoint(stage1, mode="frozen", init_from=[str(stage1)],
                                                    epochs=args.epochs or 8, lr=1e-3), **existing_runs(args))
    print_test_scores(stage2)


if __name__ == "__main__":
    run_script(main)
