"""A teacher's outputs for distillation (`train --teacher CKPT`): its logits and the vector
its head reads, for every row of a split of the student's data, computed once with the
teacher's own preprocessing and kept in the feature cache, so the student never runs the
teacher during training.

The entry's key is the teacher's whole weights (backbones included), its settings, the
split's CSV, its clips and (for a text teacher) its token ids, and the package version. Each output row carries its
Dialogue_ID and Utterance_ID; the student's rows are matched to them by those ids, and a
row without a match is an error, never a silent shift.

With `--teacher-ensemble` the teacher is every seed of a setting folder together: each seed's
outputs are cached as one teacher's, and their mean class probabilities are what the student
learns from."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from accelerate.utils import send_to_device

from recognize import __version__
from recognize import checkpoint as ckpt
from recognize.builder import SplitData, eval_loader, make_split, read_inputs
from recognize.cache import Entry, cache_root, clips_digest, file_digest, masked_yet_clip_by_clip, tokens_digest, weights_digest
from recognize.config import RESULT_NEUTRAL, ExperimentConfig
from recognize.dataset.meld import csv_path
from recognize.engine import make_accelerator, process_state, resolved_precision
from recognize.errors import RecognizeError
from recognize.evaluator import load_trained
from recognize.lineage import teacher_name
from recognize.main_process import on_main_process
from recognize.objective import TEACHER_EMBEDDINGS, TEACHER_LOGITS
from recognize.seeds import seed_folders

TABLES: tuple[str, ...] = ("logits", "embeddings", "dialogue_id", "utterance_id")
"""The tensors of a teacher entry, one row per row of the split."""


@dataclass
class TeacherOutputs:
    """A teacher's outputs on the rows of a split, in the split's row order."""

    folder: str
    record: dict[str, Any]
    logits: torch.Tensor
    embeddings: torch.Tensor
    dialogue_id: torch.Tensor
    utterance_id: torch.Tensor
    entries: tuple[Path, ...]
    """The feature cache entries the outputs were read from (one per seed of an ensemble)."""
    members: tuple[str, ...] = ()
    """The seed folders an ensemble teacher combines; () for a single teacher."""

    @property
    def name(self) -> str:
        """What the student learns from, as the lineage says it (`lineage.teacher_name`)."""
        return teacher_name(self.record["run_name"], self.members)


def teacher_folders(config: ExperimentConfig) -> list[Path]:
    """The checkpoint folders a run learns from: `--teacher` itself, or with
    `--teacher-ensemble` every seed folder of that setting folder (two at least)."""
    if not config.teacher_ensemble:
        return [Path(config.teacher)]
    members = seed_folders(config.teacher)
    if len(members) < 2:
        raise RecognizeError(f"--teacher-ensemble: --teacher {config.teacher} holds {len(members)} seed-* checkpoint "
                             "folder(s); an ensemble teacher is a `train --seeds` setting folder of two seeds or more")
    return members


def check_teacher(config: ExperimentConfig) -> None:
    """Check that each of `config`'s teacher folders is a finished checkpoint this run can
    learn from: not the run itself, and, for the losses that compare class scores (kd,
    dist), trained on the same label type."""
    for folder in teacher_folders(config):
        _check_one(config, folder)


def _check_one(config: ExperimentConfig, folder: Path) -> None:
    """check_teacher for one teacher folder."""
    if not (folder / ckpt.CONFIG).is_file():
        raise RecognizeError(f"--teacher {ckpt.not_a_checkpoint(folder)}")
    if not (folder / ckpt.WEIGHTS).is_file():
        raise RecognizeError(f"--teacher {folder}: has no {ckpt.WEIGHTS} (its training never finished an epoch?)")
    if folder.resolve() == config.run_dir.resolve():
        raise RecognizeError(f"--teacher {folder}: is this run's own checkpoint folder")
    ckpt.check_finished(folder)  # now, before --overwrite replaces an old run
    teacher, _ = ckpt.read_checkpoint_config(folder)
    if config.response_loss and teacher.task != config.task:
        raise RecognizeError(f"--teacher {folder}: predicts {teacher.task}, this run {config.task}; "
                             f"--distill {config.distill} compares class scores (--distill feature does not)")


def teacher_outputs(config: ExperimentConfig, split: str = "train") -> TeacherOutputs:
    """The outputs of `config.teacher` on every row of `split` of `config.data` (with
    `--teacher-ensemble`, its seeds' outputs combined by `ensemble_outputs`)."""
    if not config.teacher_ensemble:
        return _single_outputs(config, config.teacher, split)
    return ensemble_outputs(config.teacher, [_single_outputs(config, str(folder), split) for folder in teacher_folders(config)])


def ensemble_outputs(folder: str, members: list[TeacherOutputs]) -> TeacherOutputs:
    """One teacher made of several (the seeds of setting folder `folder`), on the first
    member's rows (the others' matched to them by id): its logits are the log of the
    members' mean class probabilities, so that their softmax is that mean (what `eval
    --ensemble` scores) and kd's softmax(logits / tau) softens it as it would one teacher's.
    It has no embeddings (a (rows, 0) tensor): each seed's head reads vectors of its own."""
    first = members[0]
    rows = pd.DataFrame({"dialogue_id": first.dialogue_id.tolist(), "utterance_id": first.utterance_id.tolist()})
    log_probabilities = torch.stack([aligned_columns(member, rows, f"the rows of {first.folder}")[TEACHER_LOGITS].log_softmax(-1)
                                     for member in members])
    logits = torch.logsumexp(log_probabilities, dim=0) - math.log(len(members))  # finite where a probability underflows
    return TeacherOutputs(folder, first.record, logits, torch.zeros(len(rows), 0), first.dialogue_id, first.utterance_id,
                          entries=tuple(entry for member in members for entry in member.entries),
                          members=tuple(member.folder for member in members))


def _single_outputs(config: ExperimentConfig, folder: str, split: str) -> TeacherOutputs:
    """The outputs of the teacher in `folder` on every row of `split` of `config.data`: read
    from the feature cache, or computed (every process prepares the split, since a frozen
    teacher's features are built together; the main process runs the teacher, on the GPU
    when there is one, and stores its outputs) and stored there."""
    teacher, record, built = load_trained(folder, config.trust_remote_code)
    teacher.data, teacher.cache_dir = config.data, config.cache_dir
    inputs = read_inputs(teacher, built, split)  # tokenised and probed once, hit or miss
    clips = {m: index.paths for m, index in inputs.indexes.items()}
    entry = Entry.for_key(cache_root(config.cache_dir), _key(folder, teacher, record, built, split, clips, inputs.text))
    state = process_state()
    problem = entry.load(len(inputs.rows), TABLES)
    if problem is not None:
        data = make_split(teacher, built, split, inputs=inputs)  # on every process: a frozen teacher's features are built together
        if problem != "absent":
            state.print(f"feature cache: {entry.path} is {problem}; computing the teacher's outputs again")

    def save_outputs() -> None:
        if problem is not None:
            entry.save(_compute(teacher, built, data))
    on_main_process(state, save_outputs)  # every process, every time: the others read what the main one wrote
    if entry.tensors is None and (problem := entry.load(len(inputs.rows), TABLES)) is not None:
        raise RecognizeError(f"feature cache: {entry.path} is {problem} right after it was built")
    return TeacherOutputs(folder, record, entries=(entry.path,), **entry.tensors)


def aligned_columns(outputs: TeacherOutputs, rows: pd.DataFrame, where: str) -> dict[str, torch.Tensor]:
    """The teacher's logits and embeddings for each of `rows` (a student's split, in its
    order), matched by (dialogue_id, utterance_id); a row the teacher has no output for is
    a RecognizeError naming it and `where` it comes from."""
    position = {(int(d), int(u)): i for i, (d, u) in enumerate(zip(outputs.dialogue_id.tolist(), outputs.utterance_id.tolist()))}
    order = []
    for row, (dialogue, utterance) in enumerate(zip(rows["dialogue_id"], rows["utterance_id"])):
        found = position.get((int(dialogue), int(utterance)))
        if found is None:
            raise RecognizeError(f"--teacher {outputs.folder}: no teacher output for Dialogue_ID {dialogue}, "
                                 f"Utterance_ID {utterance} ({where}, row {row}); its outputs do not cover these rows")
        order.append(found)
    index = torch.as_tensor(order, dtype=torch.long)
    return {TEACHER_LOGITS: outputs.logits[index], TEACHER_EMBEDDINGS: outputs.embeddings[index]}


def distillation_record(config: ExperimentConfig, outputs: TeacherOutputs) -> dict[str, Any]:
    """config.json's "distillation" entry: the teacher (folder, run name, modalities, mode,
    its own lineage; an ensemble's seed folders, "members") and the loss with its weight and
    temperature (and, for a combination such as dist+feature, the feature term's)."""
    experiment = outputs.record["experiment"]
    record = {"teacher": str(outputs.folder), "run_name": outputs.record["run_name"], "modal": experiment["modal"],
              "mode": experiment["mode"], "task": experiment["task"], "lineage": outputs.record.get("lineage", []),
              "distillation": outputs.record.get("distillation"), "loss": config.distill,
              "weight": config.distill_weight, "temperature": config.temperature,
              "outputs": [entry.name for entry in outputs.entries] if outputs.members else outputs.entries[0].name}
    if outputs.members:
        record["members"] = list(outputs.members)
    if config.feature_weight is not None:
        record.update(feature_weight=config.feature_weight, feature_temperature=config.feature_temperature)
    return record


def _key(folder: str, teacher: ExperimentConfig, record: dict[str, Any], built, split: str,
         clips: "dict[str, list]", tokens: "list[dict[str, list[int]]] | None" = None) -> dict[str, Any]:
    """The cache key of a teacher's outputs on `split` (see the module docstring); `tokens`,
    the split's token ids for a teacher that reads text."""
    settings = {k: v for k, v in teacher.to_dict().items() if k not in RESULT_NEUTRAL | {"data", "output_dir"}}
    settings["precision"] = resolved_precision(teacher.precision)  # "auto" computes in bf16 on a GPU, fp32 on a CPU
    key = {"kind": "teacher", "modality": "teacher", "model": str(Path(folder).resolve()), "backbone": record["run_name"],
           "split": split, "version": __version__, "weights": weights_digest(built.model), "settings": settings,
           "configs": built.config_digests,
           "csv": file_digest(csv_path(teacher.data, split)), "clips": {m: clips_digest(p) for m, p in clips.items()}}
    if any(masked_yet_clip_by_clip(encoder) for encoder in built.model.encoders.values()):
        key["audio_clip_by_clip"] = True
    if tokens is not None:
        key["tokens"] = tokens_digest(tokens)
    return key


def _compute(teacher: ExperimentConfig, built, data: SplitData) -> dict[str, torch.Tensor]:
    """A live pass of the teacher over every row of a split: its logits and embeddings, in row order."""
    rows = data.rows
    accelerator = make_accelerator(teacher.precision)
    model = built.model.to(accelerator.device).eval()
    logits, embeddings, indices = [], [], []
    with torch.no_grad():
        for batch in eval_loader(teacher, built, data.dataset):
            batch = send_to_device(batch, accelerator.device, non_blocking=True)
            with accelerator.autocast():
                batch_logits, embedding = model(batch, with_embedding=True)
            logits.append(batch_logits.float().cpu())
            embeddings.append(embedding.float().cpu())
            indices.append(batch["index"].cpu())
    order = torch.argsort(torch.cat(indices))
    return {"logits": torch.cat(logits)[order], "embeddings": torch.cat(embeddings)[order],
            "dialogue_id": torch.tensor(rows["dialogue_id"].tolist(), dtype=torch.long),
            "utterance_id": torch.tensor(rows["utterance_id"].tolist(), dtype=torch.long)}
