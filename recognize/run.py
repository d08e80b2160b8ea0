"""`train(config)`: one run from an ExperimentConfig to a finished checkpoint folder
(config.json, model.safetensors, history.csv, metrics.json)."""

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate.utils import set_seed

from recognize import checkpoint as ckpt
from recognize.builder import build_model, eval_loader, fusion_for, has_split, load_rows, make_split, media_note, train_loader
from recognize.config import RESULT_NEUTRAL, ExperimentConfig, cli_flag
from recognize.dataset.meld import data_fingerprint, disagreeing_labels
from recognize.engine import TRAINED, class_weights, fit, process_state, resolved_precision
from recognize.epoch_log import check_log
from recognize.errors import RecognizeError
from recognize.evaluator import report_read_failures, score
from recognize.init_from import lineage_entries, load_source, source_weights
from recognize.labels import LABELS
from recognize.main_process import on_main_process
from recognize.model.modes import checkpoint_state, unstored_digest
from recognize.objective import make_objective
from recognize.seeds import AGGREGATE, aggregate, seed_folders, seed_member
from recognize.teacher import aligned_columns, check_teacher, distillation_record, teacher_outputs


def train(config: ExperimentConfig, overwrite: bool = False, resume: bool = False) -> Path:
    """Train as `config` says and return the checkpoint folder.

    An existing folder is an error unless `overwrite` (start afresh) or `resume` (continue
    an interrupted run from its last completed epoch, with the same config; a finished run
    of the same config is kept as it is, so a resumed recipe or job passes over it)."""
    run_dir = config.run_dir
    if overwrite and resume:
        raise RecognizeError("--overwrite and --resume exclude each other")
    if not config.seed_folder and seed_folders(run_dir):  # --overwrite would delete every seed's run
        raise RecognizeError(f"{run_dir}: holds the runs of `train --seeds`; train with --seeds, or pass another "
                             "--output-dir for a single run")
    if resume and _finished(run_dir, config):
        process_state().print(f"{run_dir}: finished already; kept (--overwrite trains it again)")
        return run_dir
    resume_from_state = resume and _check_resumable(run_dir, config)
    if run_dir.exists() and not (overwrite or resume):
        raise _exists(run_dir)
    _check_output_dir(Path(config.output_dir))
    fusion_for(config)  # bad flags, data, teacher and --init-from sources fail before an old run is replaced
    check_log(config.log)
    if config.teacher:
        check_teacher(config)
    train_rows, dev_rows = load_rows(config, "train"), load_rows(config, "dev")
    test_rows = load_rows(config, "test") if has_split(config, "test") else None  # a bad test CSV fails now, not after training
    sources = [load_source(folder, config) for folder in config.init_from]
    set_seed(config.seed)
    built = build_model(config, source_weights(sources))
    lineage = lineage_entries(sources, built.initialised)
    distributed = process_state()

    def replace_old_run() -> None:
        if overwrite and run_dir.exists():
            shutil.rmtree(run_dir)
    on_main_process(distributed, replace_old_run)  # the others wait: they may not see the old run while it goes
    for entry in lineage:
        distributed.print(f"initialised from {entry['folder']}: {', '.join(entry['loaded'])}")
    labels = list(LABELS[config.task])
    train_split = make_split(config, built, "train", training=True, rows=train_rows)
    dev_split = make_split(config, built, "dev", rows=dev_rows)
    train_set = train_split.dataset
    for split, data in (("train", train_split), ("dev", dev_split)):
        if note := media_note(data.media_report):
            distributed.print(f"{split}: {note}")
    absent = [name for name, count in zip(labels, np.bincount(train_set.labels, minlength=len(labels))) if count == 0]
    if absent:
        distributed.print(f"warning: no training row is labelled {', '.join(absent)}: the model cannot learn "
                          f"{'that class' if len(absent) == 1 else 'those classes'}")
    disagreeing = disagreeing_labels(train_split.rows)
    if len(disagreeing):
        first = disagreeing.iloc[0]
        distributed.print(f"warning: {len(disagreeing)} training row(s) pair an emotion with a sentiment MELD never gives it "
                          f"(e.g. Dialogue_ID {first['dialogue_id']}, Utterance_ID {first['utterance_id']}: {first['emotion']}, "
                          f"{first['sentiment']}); check the CSV's Emotion and Sentiment columns")
    extra: dict[str, Any] = {"lineage": lineage}
    teacher_width = 0
    if config.teacher:
        outputs = teacher_outputs(config, "train")
        train_set.add_columns(aligned_columns(outputs, train_split.rows, f"{config.data} train"))
        extra["distillation"] = distillation_record(config, outputs)
        teacher_width = outputs.embeddings.shape[1]
        feature = (f"; feature weight {config.feature_weight}, temperature {config.feature_temperature}"
                   if config.feature_weight is not None else "")
        distributed.print(f"distilling {outputs.name} ({config.distill}, weight {config.distill_weight}, "
                          f"temperature {config.temperature}{feature}); its outputs: {', '.join(map(str, outputs.entries))}")
    if not resume_from_state:
        def write_config() -> None:
            extra.update(data_fingerprint=data_fingerprint(config.data), resolved_precision=resolved_precision(config.precision),
                         parameters=_parameter_counts(built.model),
                         unstored_weights=unstored_digest(built.model, set(checkpoint_state(built.model))),
                         backbone_configs=built.config_digests)
            ckpt.write_json(run_dir / ckpt.CONFIG, ckpt.checkpoint_record(config, extra))
        on_main_process(distributed, write_config)

    weights = class_weights(train_set.labels, len(labels)) if config.class_weights else None
    torch.manual_seed(config.seed)  # the objective's own layer starts the same whatever ran before it
    objective = make_objective(config, weights, built.model.embedding_size, teacher_width)
    result = fit(built.model, train_loader(config, built, train_set), eval_loader(config, built, dev_split.dataset),
                 labels, config, run_dir, objective=objective, resume=resume_from_state)
    metrics: dict[str, Any] = {
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": round(result.train_seconds, 3),
        "train_samples": len(train_set),
        "dev": result.best_dev,
    }
    report_read_failures(train_split, result.present["train"])  # over every epoch and process
    report_read_failures(dev_split, result.present["dev"])
    media_reports = {"train": train_split.media_report, "dev": dev_split.media_report}
    if test_rows is not None:
        test_split = make_split(config, built, "test", rows=test_rows)
        metrics["test"] = score(config, built, test_split, labels)[1]
        media_reports["test"] = test_split.media_report
    if any(media_reports.values()):
        metrics["missing_media"] = media_reports

    def write_metrics() -> None:
        ckpt.write_json(run_dir / ckpt.METRICS, metrics)
        shutil.rmtree(run_dir / ckpt.STATE, ignore_errors=True)
    on_main_process(distributed, write_metrics)  # callers (--seeds, cross-validation) read metrics.json on every process
    return run_dir


def train_seeds(config: ExperimentConfig, seeds: list[int], overwrite: bool = False, resume: bool = False) -> Path:
    """Train `config` once per seed, each into `{run_name}/seed-{s}/` (an `--init-from` or
    `--teacher` setting folder gives each seed its own seed's run, but with --teacher-ensemble
    all its seeds), then write
    `{run_name}/aggregate.json`; return the setting folder."""
    if (config.setting_dir / ckpt.CONFIG).is_file():
        raise RecognizeError(f"{config.setting_dir}: holds a single-seed run of this setting; pass another --output-dir for --seeds")
    run_configs = {seed: ExperimentConfig.from_dict({**config.to_dict(), "seed": seed, "seed_folder": True,
                                                     "init_from": [seed_member(p, seed) for p in config.init_from],
                                                     "teacher": config.teacher if config.teacher_ensemble
                                                     else seed_member(config.teacher, seed) if config.teacher else ""})
                   for seed in seeds}  # every seed's settings are checked before the first one trains
    per_seed = {seed: ckpt.read_json(train(run_config, overwrite=overwrite, resume=resume) / ckpt.METRICS)
                for seed, run_config in run_configs.items()}
    on_main_process(process_state(), lambda: ckpt.write_json(config.setting_dir / AGGREGATE, aggregate(per_seed)))
    return config.setting_dir


def _exists(run_dir: Path) -> RecognizeError:
    """The error for a run whose folder is already there, saying what it holds and the way on:
    --resume for an interrupted run, --overwrite or another --output-dir for a finished one
    (whose name may be the same for other settings)."""
    latest = run_dir / ckpt.STATE / "latest.json"
    if latest.is_file():
        try:
            after = f" after epoch {ckpt.read_json(latest)['folder'].removeprefix('epoch-')}"
        except (RecognizeError, KeyError, TypeError, AttributeError):  # damaged: --resume says how
            after = ""
        return RecognizeError(f"{run_dir}: checkpoint folder exists, holding a run interrupted{after}; "
                              "pass --resume to continue it or --overwrite to start afresh")
    if (run_dir / ckpt.METRICS).is_file():
        return RecognizeError(f"{run_dir}: checkpoint folder exists, holding a finished run; pass --overwrite to replace "
                              "it, or another --output-dir to keep both (run names leave out --context, --lr, --epochs...)")
    return RecognizeError(f"{run_dir}: checkpoint folder exists; pass --overwrite to replace it or --resume to continue it")


def _check_output_dir(folder: Path) -> None:
    """Fail before anything loads when `--output-dir` (or a folder above it) is a file: the
    run could not write its checkpoint there after all its preparation."""
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise RecognizeError(f"--output-dir {folder}: {place} is a file, not a folder")
            return


def _shown(value: Any) -> str:
    """A setting's value in a message: "default" for None, a list comma-joined ("none" when empty)."""
    if value is None:
        return "default"
    return (",".join(map(str, value)) or "none") if isinstance(value, list) else str(value)


def _finished(run_dir: Path, config: ExperimentConfig) -> bool:
    """Whether `run_dir` holds a finished run (metrics.json, no resumable state) of this
    very config (a finished run of other settings is an error)."""
    if not (run_dir / ckpt.METRICS).is_file() or (run_dir / ckpt.STATE / "latest.json").is_file():
        return False
    _check_same_settings(run_dir, config)
    return True


def _check_resumable(run_dir: Path, config: ExperimentConfig) -> bool:
    """Whether `run_dir` holds an interrupted run of this very config (stopped after an
    epoch, or after training in its test evaluation); True means resume from its state,
    False (no folder yet) means a fresh start."""
    if not run_dir.exists():
        return False
    if not any((run_dir / ckpt.STATE / name).is_file() for name in ("latest.json", TRAINED)):
        raise RecognizeError(f"{run_dir}: no completed epoch to resume from; use --overwrite")
    _check_same_settings(run_dir, config)
    return True


def _check_same_settings(run_dir: Path, config: ExperimentConfig) -> None:
    """Fail unless the run in `run_dir` was trained with `config`'s settings (those that
    change results); take its resolved `--pooling` when `config` says auto."""
    saved, _ = ckpt.read_checkpoint_config(run_dir)
    differs = [k for k, v in config.to_dict().items() if v != getattr(saved, k) and k not in RESULT_NEUTRAL
               and k != "output_dir" and not (k == "pooling" and v == "auto")]  # a moved folder resumes too
    if differs:
        changes = ", ".join(f"{cli_flag(k)} {_shown(getattr(saved, k))} -> {_shown(getattr(config, k))}" for k in differs)
        longer = ("; to train a finished run longer, start a stage from it (--init-from): the learning-rate "
                  "schedule spans the epochs" if "epochs" in differs else "")
        raise RecognizeError(f"{run_dir}: --resume needs the earlier run's settings; these differ: {changes}{longer}")
    config.pooling = saved.pooling


def _parameter_counts(model) -> dict[str, int]:
    """Total, trainable and stored parameter counts of `model`."""
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "stored": sum(t.numel() for t in checkpoint_state(model).values()),
    }
