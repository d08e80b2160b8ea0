"""`--init-from`: the tensors an earlier stage's checkpoint gives a new run, and the
lineage entries config.json records for it (`lineage.py` names the stages)."""

from dataclasses import dataclass
from typing import Any

import torch

from recognize import checkpoint as ckpt
from recognize.config import ExperimentConfig
from recognize.errors import RecognizeError
from recognize.evaluator import load_trained


TEXT_INPUT_SETTINGS: tuple[str, ...] = ("pooling", "context", "max_length")
"""Settings that change the text vector a head reads: a head trained with others is not loaded."""


@dataclass
class InitSource:
    """An `--init-from` checkpoint: the tensors it offers this run, and what it was."""

    folder: str
    record: dict[str, Any]
    config: ExperimentConfig
    weights: dict[str, torch.Tensor]
    epoch: str = "best"
    """Which of its epochs the weights are (`--init-epoch`): best or last."""


def lineage_entries(sources: list[InitSource], initialised: list[str]) -> list[dict[str, Any]]:
    """config.json's lineage entries of `sources`, each naming the parts of the model it
    initialised (of `initialised`, every tensor loaded; where sources overlap, the later
    wins); a source that initialised nothing is an error."""
    entries, claimed = [], set()
    for source in reversed(sources):
        own = {_module_of(name) for name in initialised if name in source.weights and name not in claimed}
        claimed |= set(source.weights)
        if not own:
            raise RecognizeError(f"--init-from {source.folder}: none of its tensors fit this model "
                                 f"(its backbones differ from this run's, or a later --init-from replaces them)")
        config = source.config
        entries.append({"folder": source.folder, "run_name": source.record["run_name"], "mode": config.mode,
                        "modal": config.modal, "fusion": config.fusion if len(config.modalities) > 1 else None,
                        "loaded": sorted(own), "lineage": source.record.get("lineage", []),
                        "distillation": source.record.get("distillation"),
                        **({"epoch": source.epoch} if source.epoch != "best" else {})})
    return entries[::-1]


def load_source(folder: str, config: ExperimentConfig) -> InitSource:
    """Load an `--init-from` checkpoint and keep the tensors it may give `config`'s model:
    its encoders' always; its fusion's and head's only when it read the same inputs (same
    modalities and fusion, and for text the same pooling, context and token budget), since
    a head over other vectors means nothing here even when the shapes happen to agree.
    LoRA adapters are merged into the backbone weights first. With `--pooling auto`, a
    text encoder taken from the checkpoint keeps the pooling it was trained with. With
    `--init-epoch last`, the weights are its last epoch's (last.safetensors) rather than its best's."""
    weights_file = ckpt.LAST_WEIGHTS if config.init_epoch == "last" else ckpt.WEIGHTS
    source_config, record, built = load_trained(folder, config.trust_remote_code, weights_file)
    shared = set(source_config.modalities) & set(config.modalities)
    if not shared:
        raise RecognizeError(f"--init-from {folder}: a {source_config.modal} checkpoint shares no modality with --modal {config.modal}")
    if "T" in shared and config.pooling == "auto":
        config.pooling = source_config.pooling
    model = built.model
    for encoder in model.encoders.values():
        if hasattr(encoder.backbone, "merge_and_unload"):  # a LoRA stage: fold adapters in
            encoder.backbone = encoder.backbone.merge_and_unload()
    same_text = "T" not in shared or all(getattr(source_config, setting) == getattr(config, setting)
                                         for setting in TEXT_INPUT_SETTINGS)
    same_inputs = (source_config.modal == config.modal and same_text
                   and (len(shared) == 1 or source_config.fusion == config.fusion))
    weights = {name: tensor for name, tensor in model.state_dict().items()
               if same_inputs or any(name.startswith(f"encoders.{m}.") for m in shared)}
    return InitSource(str(folder), record, source_config, weights, config.init_epoch)


def source_weights(sources: list[InitSource]) -> dict[str, torch.Tensor]:
    """The tensors `sources` offer a model, together; where two offer one, the later wins
    (as `lineage_entries` records it)."""
    return {name: tensor for source in sources for name, tensor in source.weights.items()}


def _module_of(name: str) -> str:
    """The part of the model a tensor belongs to: "encoders.T", "fusion" or "head"."""
    parts = name.split(".")
    return ".".join(parts[:2]) if parts[0] == "encoders" else parts[0]
