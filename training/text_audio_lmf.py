"""Text + audio fused by LMF (MPNet + Wav2Vec2), after text-only full tuning: the three rows
of ORIGIN.md's multimodal table, in one run that shares their common stages.

    python training/text_audio_lmf.py datasets/MELD

  1. T full tuning                                       checkpoints/text_audio_lmf/T--ET(all-mpnet-base-v2)
  2. "Text-only Full Tuning -> Training Classification"  checkpoints/text_audio_lmf/after-text-only/T+A--EF--LMF(...)
  3. "Text-only Full Tuning -> Full Tuning"              checkpoints/text_audio_lmf/T+A--ET--LMF(...)
  4. "... -> Full Tuning -> Training Classification"     checkpoints/text_audio_lmf/T+A--EF--LMF(...)

The stages go in a folder of their own, apart from other recipes' runs of the same settings.
Stages 2 and 4 have the same settings, hence the same folder name; stage 2 goes one folder
down. The data folder needs audios/{split}/ (`emotion-recognize prepare`).
"""

from pathlib import Path

from recognize import ExperimentConfig, train
from recognize.scripting import existing_runs, print_test_scores, recipe_arguments, run_script, stages_folder


def main(argv: "list[str] | None" = None) -> None:
    """Tune the text encoder alone, then fuse it with audio in each of the table's ways."""
    args = recipe_arguments(__doc__, argv, text_model="sentence-transformers/all-mpnet-base-v2",
                            audio_model="facebook/wav2vec2-base")
    common = dict(data=args.data, task=args.task, text_model=args.text_model, audio_model=args.audio_model,
                  batch_size=args.batch_size, seed=args.seed, output_dir=stages_folder(args, Path(__file__).stem))
    text = train(ExperimentConfig(modal="T", mode="full", epochs=args.epochs or 4, lr=2e-5, **common), **existing_runs(args))
    fused = dict(modal="T+A", fusion="lmf", lmf_rank=4, fusion_dim=64, **common)
    classifier_after_text = train(ExperimentConfig(**{**fused, "output_dir": str(Path(common["output_dir"]) / "after-text-only")},
                                                   mode="frozen", epochs=args.epochs or 8, lr=1e-3, init_from=[str(text)]),
                                  **existing_runs(args))
    full = train(ExperimentConfig(**fused, mode="full", epochs=args.epochs or 4, lr=2e-5, head_lr=1e-3,  # LMF starts afresh
                                  init_from=[str(text)]), **existing_runs(args))
    classifier_after_full = train(ExperimentConfig(**fused, mode="frozen", epochs=args.epochs or 8, lr=1e-3,
                                                   init_from=[str(full)]), **existing_runs(args))
    print_test_scores(classifier_after_text, full, classifier_after_full)


if __name__ == "__main__":
    run_script(main)
