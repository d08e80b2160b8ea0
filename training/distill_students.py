"""Cross-modal distillation, after TelME: a text teacher guides an audio and a video student,
then the three are fused. Offline on local model folders with --text-model, --audio-model,
--video-model.

    python training/distill_students.py datasets/MELD

  1. the text teacher, full tuning                      checkpoints/distill_students/T--ET(all-mpnet-base-v2)
  2. the audio student, full tuning with KD from it      checkpoints/distill_students/A--ET(wav2vec2-base)
  3. the video student, LoRA with KD from it             checkpoints/distill_students/V--EL(vivit-b-16x2-kinetics400)
  4. the three fused by text-led attention, classifier   checkpoints/distill_students/T+A+V--EF--ATTENTION(...)

The stages go in a folder of their own, apart from other recipes' runs of the same settings.

The teacher's outputs on the training rows are computed once (stage 2) and read from the
feature cache in stage 3. Pass --distill dist, feature or dist+feature to try the other
losses. The data folder needs audios/ and videos/ (`emotion-recognize prepare`).
"""

from pathlib import Path

from recognize import ExperimentConfig, train
from recognize.config import DISTILL_LOSSES
from recognize.scripting import existing_runs, print_test_scores, recipe_arguments, run_script, stages_folder


def main(argv: "list[str] | None" = None) -> None:
    """Train the teacher, distil it into each student, fuse all three and test the result."""
    args = recipe_arguments(__doc__, argv, text_model="sentence-transformers/all-mpnet-base-v2",
                            audio_model="facebook/wav2vec2-base", video_model="google/vivit-b-16x2-kinetics400",
                            choices={"--distill": ("kd", DISTILL_LOSSES)})
    common = dict(data=args.data, task=args.task, text_model=args.text_model, audio_model=args.audio_model,
                  video_model=args.video_model, batch_size=args.batch_size, seed=args.seed,
                  output_dir=stages_folder(args, Path(__file__).stem))
    teacher = train(ExperimentConfig(modal="T", mode="full", epochs=args.epochs or 4, lr=2e-5, **common), **existing_runs(args))
    distilled = dict(teacher=str(teacher), distill=args.distill, **common)
    audio = train(ExperimentConfig(modal="A", mode="full", epochs=args.epochs or 4, lr=5e-5, head_lr=1e-3, **distilled),
                  **existing_runs(args))
    video = train(ExperimentConfig(modal="V", mode="lora", epochs=args.epochs or 4, lr=2e-4, head_lr=1e-3, **distilled),
                  **existing_runs(args))
    fused = train(ExperimentConfig(modal="T+A+V", fusion="attention", fusion_dim=64, mode="frozen", epochs=args.epochs or 8,
                                   lr=1e-3, init_from=[str(teacher), str(audio), str(video)], **common),
                  **existing_runs(args))
    print_test_scores(teacher, audio, video, fused)


if __name__ == "__main__":
    run_script(main)
