"""How well a named training recipe does on real MELD, over several seeds: each stage of the
recipe is trained with `recognize.run.train_seeds` (what `emotion-recognize train --seeds`
runs), and each seed's scores, and their mean and sample standard deviation, are recorded as
JSON lines.

A recipe (RECIPES below) is one or more stages of ExperimentConfig settings; a stage after the
first starts from the one before it (`--init-from` its setting folder: seed s from seed s),
with that stage's settings and its own changes. Each stage is one `emotion-recognize train
... --seeds ... --resume` command, printed on stderr before it runs and written in its lines
(`command`), so that a result can be had again without this script.

The first stage's runs go in --output-dir as `train --output-dir` puts them
(`{run_name}/seed-{s}/`), stage k's in `{output-dir}/stage-{k}/`. A seed that finished there
with the same settings is collected, not trained again (`train --resume`; an interrupted one
is continued, so none may be training there meanwhile): --output-dir pointed at a finished
`train --seeds` run of a recipe's settings records that run. Give each recipe a folder of
its own (run names leave out most settings, and a finished run of other settings under the
same name is an error); a recipe whose first stage is another recipe's (two_stage's is
baseline) may share that one's folder, and collects its seeds (two_stage_last only where
they were trained with --keep-last: it needs their last.safetensors).

The JSON lines (stdout, and appended to --output all together when the last stage is done):
  per stage and seed: recipe, stage (its training stages, as `report` names them), backbone,
    task, seed, dev_weighted_f1, test_accuracy, test_weighted_f1 (percent: the best dev
    epoch's model, scored on test when it trained, from metrics.json), epochs_run,
    best_epoch, train_seconds (the training loop, from metrics.json), collected (true: the
    run was there already), machine (the one this script ran on), command;
  per stage: a summary line with the seeds, n, and the mean and sample standard deviation
    (null for one seed) of the seeds' test accuracy and weighted-F1 (of the unrounded
    scores, as `emotion-recognize report` and aggregate.json give them);
  with --ensemble, per stage: an ensemble line, the test accuracy and weighted-F1 of the
    seeds' mean class probabilities (`emotion-recognize eval SETTING --ensemble`, whose
    files go into the setting's ensemble/ folder).

usage: python benchmarks/quality.py MELD_DIR --recipe NAME --text-model DIR [--label-type emotion]
       [--seeds 1,2,3] [--output-dir DIR] [--epochs N] [--ensemble] [--teacher CKPT [--teacher-ensemble]]
       [--output FILE.jsonl]
"""

import argparse
import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recognize import ExperimentConfig
from recognize.checkpoint import CONFIG, METRICS, STATE, read_json
from recognize.config import backbone_name, cli_flag
from recognize.errors import RecognizeError
from recognize.ensemble import evaluate_ensemble
from recognize.flag_scope import check_given_flags, unused_reason
from recognize.labels import LABELS
from recognize.lineage import record_stages
from recognize.metrics import mean_and_std
from recognize.run import train_seeds
from recognize.scripting import run_script
from recognize.seeds import parse_seeds

from jsonl import emit_together, machine, progress_to_stderr, run_scores
from stages import CLASSIFIER_STAGE, next_stage


@dataclass(frozen=True)
class Recipe:
    """A named way to train: what it is in one line, where it comes from, and its stages'
    settings (ExperimentConfig fields; each stage after the first also keeps the stage
    before's settings and starts from its runs)."""

    description: str
    source: str
    stages: tuple[dict[str, Any], ...]
    distilled: bool = False
    """Whether the first stage learns from a trained checkpoint, the script's --teacher."""


BASELINE: dict[str, Any] = {"modal": "T", "mode": "full", "epochs": 4, "batch_size": 32, "lr": 5e-5, "context": 0}
"""Full tuning of the text encoder and head on the utterance alone."""

LAYER_DECAY: dict[str, Any] = {**BASELINE, "lr": 1e-4, "layer_decay": 0.8}
"""The baseline with layer-wise lr decay (the top layer at 1e-4)."""

SMOOTH_DECAY: dict[str, Any] = {**LAYER_DECAY, "label_smoothing": 0.1}
"""LAYER_DECAY with label smoothing."""

DECAY_DISTILL: dict[str, Any] = {**LAYER_DECAY, "distill": "kd"}
"""LAYER_DECAY with the teacher's softened outputs (kd, weight 0.5, temperature 2) where SMOOTH_DECAY smooths the labels."""

SMOOTH_CLASSIFIER_STAGE: dict[str, Any] = {**CLASSIFIER_STAGE, "layer_decay": 1.0}
"""CLASSIFIER_STAGE after a SMOOTH_DECAY stage: layer decay off (frozen mode trains no encoder layer)."""

RECIPES: dict[str, Recipe] = {
    "baseline": Recipe("full tuning, 4 epochs, batch 32, lr 5e-5, the utterance alone (context 0)",
                       "benchmarks/text_finetune.py's toolkit run", (BASELINE,)),
    "two_stage": Recipe("baseline, then the classifier alone on its tuned encoder (frozen, 4 epochs, lr 1e-3)",
                        "benchmarks/two_stage.py: Full Tuning -> Training Classification", (BASELINE, CLASSIFIER_STAGE)),
    "two_stage_last": Recipe("two_stage with the classifier started from stage 1's last epoch, not its best (stage 1 "
                             "trained with --keep-last, stage 2 with --init-epoch last)",
                             "the research table's Full Tuning -> Training Classification, stage 2 from the epoch stage 1 ended on",
                             ({**BASELINE, "keep_last": True}, {**CLASSIFIER_STAGE, "init_epoch": "last", "keep_last": False})),
    "future3": Recipe("baseline with the 3 previous and the 3 next utterances of the dialogue, speaker names",
                      "EmoBERTa (Kim and Vossen, 2021): past, current and future utterances",
                      ({**BASELINE, "context": 3, "future_context": 3},)),
    "smooth_decay": Recipe("baseline at lr 1e-4 for the top layer, layer-wise lr decay 0.8, label smoothing 0.1",
                           "layer decay: Clark et al., 2020 (ELECTRA); label smoothing: Szegedy et al., 2016",
                           (SMOOTH_DECAY,)),
    "smooth_two_stage": Recipe("smooth_decay, then the classifier alone on its tuned encoder (frozen, 4 epochs, lr 1e-3, "
                               "label smoothing kept)", "smooth_decay's sources, then the research table's "
                               "Full Tuning -> Training Classification",
                               (SMOOTH_DECAY, SMOOTH_CLASSIFIER_STAGE)),
    "smooth_long": Recipe("smooth_decay for up to 8 epochs (the learning rate decays over 8), stopped after 2 epochs "
                          "without a better dev weighted-F1 (--patience 2)",
                          "a longer schedule with early stopping on dev", ({**SMOOTH_DECAY, "epochs": 8, "patience": 2},)),
    "smooth_future3": Recipe("smooth_decay with the 3 previous and the 3 next utterances of the dialogue, speaker names, "
                             "then the classifier alone on its tuned encoder (as smooth_two_stage)",
                             "smooth_decay's and future3's sources, then the research table's "
                             "Full Tuning -> Training Classification",
                             ({**SMOOTH_DECAY, "context": 3, "future_context": 3}, SMOOTH_CLASSIFIER_STAGE)),
    "smooth_ema": Recipe("smooth_decay, scored and kept as the moving average of its weights (--ema-decay 0.999; the "
                         "ramp (1 + t) / (10 + t) caps the decay through MELD's 1,252 steps: 0.97 after epoch 1, 0.993 "
                         "at the end)", "Polyak and Juditsky, 1992: averaging the iterates; TensorFlow's "
                         "ExponentialMovingAverage ramp", ({**SMOOTH_DECAY, "ema_decay": 0.999},)),
    "decay_distill": Recipe("smooth_decay with its label smoothing replaced by distillation from --teacher (a trained "
                            "checkpoint, e.g. an MPNet smooth_two_stage seed, or a setting folder: seed s from its seed s): "
                            "(1 - 0.5) CE + 0.5 tau^2 KL at tau 2",
                            "Hinton et al., 2015: knowledge distillation; layer decay as smooth_decay",
                            (DECAY_DISTILL,), distilled=True),
    "focal": Recipe("baseline with the focal loss, gamma 2", "Lin et al., 2017 (RetinaNet): focal loss",
                    ({**BASELINE, "focal_gamma": 2.0},)),
}
"""Recipe name -> Recipe. A new one is an entry here, e.g. the baseline with a new setting:
`"name": Recipe("what it is", "where from", ({**BASELINE, "new_setting": value},))`."""

SHOWN_ALWAYS: tuple[str, ...] = ("modal", "task", "mode", "text_model")
"""Settings a stage's command names even at their default values, so that it reads as what it trains."""


def stage_configs(recipe: Recipe, data: str, text_model: str, task: str, output_dir: str,
                  epochs: "int | None", teacher: str = "", teacher_ensemble: bool = False,
                  ) -> list[tuple[ExperimentConfig, list[str]]]:
    """Each stage's config (every stage's epochs `epochs` when given; a distilled recipe's
    first stage learns from `teacher`, all its seeds together with `teacher_ensemble`), and
    the settings its command names: SHOWN_ALWAYS, any other that is not at its default, and
    the recipe's own (but one it sets back to its default for a stage that does not use it:
    smooth_two_stage's classifier stage resets --layer-decay, which frozen mode refuses)."""
    if teacher_ensemble and not teacher:
        raise RecognizeError("--teacher-ensemble: only with --teacher")
    if recipe.distilled and not teacher:
        raise RecognizeError("--teacher: this recipe distils a trained checkpoint; name its folder")
    if teacher and not recipe.distilled:
        raise RecognizeError("--teacher: only for a distilled recipe ("
                             + ", ".join(name for name, entry in RECIPES.items() if entry.distilled) + ")")
    stages = []
    for number, overrides in enumerate(recipe.stages, start=1):
        changes = {**overrides, **({"epochs": epochs} if epochs is not None else {}),
                   **({"teacher": teacher, "teacher_ensemble": teacher_ensemble} if teacher and number == 1 else {})}
        folder = output_dir if number == 1 else str(Path(output_dir) / f"stage-{number}")
        if number == 1:
            config = ExperimentConfig(data=data, text_model=text_model, task=task, output_dir=folder, **changes)
        else:
            config = next_stage(stages[-1][0], stages[-1][0].setting_dir, output_dir=folder, **changes)
        default = ExperimentConfig()
        shown = [item.name for item in dataclasses.fields(ExperimentConfig) if item.metadata["cli"] and item.name != "data"
                 and (item.name in SHOWN_ALWAYS or getattr(config, item.name) != getattr(default, item.name)
                      or (item.name in changes and unused_reason(config, item.name) is None))]
        check_given_flags(config, shown)  # what `train` would refuse, given these flags
        stages.append((config, shown))
    return stages


def train_command(config: ExperimentConfig, shown: list[str], seeds: list[int]) -> str:
    """The `emotion-recognize train` command line that trains `config` for `seeds` as this
    script does (finished seeds kept, `--resume`), naming the `shown` settings."""
    words = ["emotion-recognize", "train", config.data]
    for name in shown:
        value, flag = getattr(config, name), cli_flag(name)
        if isinstance(value, bool):  # a switch off by default has no --no- form: off, it is left out
            words += [flag] if value else [f"--no-{flag[2:]}"] if ExperimentConfig.__dataclass_fields__[name].default else []
        elif isinstance(value, list):
            words += [part for item in value for part in (flag, str(item))]
        elif value is not None:
            words += [flag, str(value)]
    words += ["--seeds", ",".join(map(str, seeds)), "--resume"]
    return shlex.join(words)


def finished(folder: Path) -> bool:
    """Whether `folder` holds a finished run (metrics.json, no resumable state)."""
    return (folder / METRICS).is_file() and not (folder / STATE / "latest.json").is_file()


def run_stage(recipe: str, config: ExperimentConfig, command: str, seeds: list[int]) -> list[dict]:
    """Train (or collect) `config` for `seeds`; one result line per seed, then the summary."""
    members = {seed: config.setting_dir / f"seed-{seed}" for seed in seeds}
    collected = {seed: finished(folder) for seed, folder in members.items()}
    with progress_to_stderr():
        print(command, flush=True)
        train_seeds(config, seeds, resume=True)
    common = {"benchmark": "quality", "recipe": recipe}
    lines, test_scores = [], []
    for seed, folder in members.items():
        metrics = read_json(folder / METRICS)
        scores = run_scores(folder)
        test_scores.append(metrics["test"])
        lines.append({
            **common, "stage": record_stages(read_json(folder / CONFIG)), "backbone": backbone_name(config.text_model),
            "task": config.task, "seed": seed, "dev_weighted_f1": scores["dev_weighted_f1"],
            "test_accuracy": scores["test_accuracy"], "test_weighted_f1": scores["test_weighted_f1"],
            "epochs_run": metrics["epochs_run"], "best_epoch": scores["best_epoch"],
            "train_seconds": round(metrics["train_seconds"], 1), "collected": collected[seed], "machine": machine(),
            "command": command,
        })
    summary = {**common, "stage": lines[0]["stage"], "summary": True, "backbone": lines[0]["backbone"],
               "task": config.task, "seeds": seeds, "n": len(seeds)}
    for score in ("accuracy", "weighted_f1"):  # of the unrounded scores, as `report` and aggregate.json have them
        mean, std = mean_and_std([100 * test[score] for test in test_scores])
        summary[f"test_{score}_mean"], summary[f"test_{score}_std"] = round(mean, 2), None if std is None else round(std, 2)
    return [*lines, {**summary, "machine": machine(), "command": command}]


def ensemble_line(recipe: str, config: ExperimentConfig, summary: dict, seeds: list[int]) -> dict:
    """The test scores of the mean class probabilities of the stage's seeds (its setting folder's ensemble)."""
    with progress_to_stderr():
        metrics = evaluate_ensemble([config.setting_dir], split="test")
    return {"benchmark": "quality", "recipe": recipe, "stage": summary["stage"], "ensemble": True,
            "backbone": summary["backbone"], "task": config.task, "seeds": seeds, "n": len(seeds),
            "test_accuracy": round(100 * metrics["accuracy"], 2), "test_weighted_f1": round(100 * metrics["weighted_f1"], 2),
            "machine": machine(), "command": f"emotion-recognize eval {shlex.quote(str(config.setting_dir))} --ensemble"}


def main(argv: list[str]) -> None:
    """Parse the arguments, train or collect every stage of the recipe, print and record the lines."""
    listing = "\n".join(f"  {name}: {recipe.description} ({recipe.source})" for name, recipe in RECIPES.items())
    parser = argparse.ArgumentParser(description=__doc__, epilog=f"recipes:\n{listing}",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", help="MELD folder")
    parser.add_argument("--recipe", required=True, choices=list(RECIPES))
    parser.add_argument("--text-model", required=True, help="text encoder: a local model folder (or a hub id)")
    parser.add_argument("--label-type", dest="task", default="emotion", choices=list(LABELS))
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--output-dir", help="where the recipe's runs go (default: checkpoints/RECIPE)")
    parser.add_argument("--epochs", type=int, help="every stage's epochs instead of the recipe's (a quick check)")
    parser.add_argument("--ensemble", action="store_true",
                        help="also score each stage's seeds as one ensemble (their mean class probabilities); 2 seeds or more")
    parser.add_argument("--teacher", default="",
                        help="a distilled recipe's teacher: a trained checkpoint folder (e.g. an MPNet seed), or a "
                             "setting folder of `train --seeds`, whose seed s teaches seed s")
    parser.add_argument("--teacher-ensemble", action="store_true",
                        help="with --teacher a setting folder: every seed learns from all its seeds together (their mean "
                             "class probabilities)")
    parser.add_argument("--output", help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    seeds = parse_seeds(args.seeds)
    if args.ensemble and len(seeds) < 2:
        raise RecognizeError(f"--ensemble: needs two seeds or more, got --seeds {args.seeds}")
    output_dir = args.output_dir or str(Path("checkpoints") / args.recipe)
    stages = stage_configs(RECIPES[args.recipe], args.data, args.text_model, args.task, output_dir, args.epochs,
                           args.teacher, args.teacher_ensemble)
    lines = []
    for config, shown in stages:
        lines += run_stage(args.recipe, config, train_command(config, shown, seeds), seeds)
        if args.ensemble:
            lines.append(ensemble_line(args.recipe, config, lines[-1], seeds))
    emit_together(lines, args.output)


if __name__ == "__main__":
    run_script(main)
