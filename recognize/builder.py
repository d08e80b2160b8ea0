"""From an ExperimentConfig to the objects a run needs: the model (backbones loaded, mode
applied), the preprocessed splits and their DataLoaders."""

from dataclasses import dataclass

import pandas as pd
import torch
from torch.utils.data import DataLoader

from recognize.config import ExperimentConfig
from recognize.dataset.loader import Collator, LengthGroupedBatchSampler, UtteranceDataset
from recognize.dataset.meld import csv_path, label_ids, load_split
from recognize.dataset.text import tokenize_rows
from recognize.errors import RecognizeError
from recognize.labels import LABELS
from recognize.model.classifier import EmotionModel
from recognize.model.encoders import TextEncoder, load_backbone, load_tokenizer, resolve_pooling
from recognize.model.modes import apply_mode, mark_initialised

SUPPORTED_MODALITIES: tuple[str, ...] = ("T",)


@dataclass
class Built:
    """A model and what turns MELD rows into its inputs."""

    model: EmotionModel
    tokenizer: object

    @property
    def pad_token_id(self) -> int:
        """The tokenizer's padding id (0 when it has none)."""
        return self.tokenizer.pad_token_id or 0


def build_model(config: ExperimentConfig, init_weights: "dict[str, torch.Tensor] | None" = None) -> Built:
    """Load the backbones, resolve `auto` pooling into `config`, load `init_weights` (names
    and shapes that match), then apply the training mode."""
    unsupported = [m for m in config.modalities if m not in SUPPORTED_MODALITIES]
    if unsupported:
        raise RecognizeError(
            f"--modal {config.modal}: modality {'+'.join(unsupported)} is not available in this version; valid: T"
        )
    backbone = load_backbone(config.text_model, config.trust_remote_code)
    tokenizer = load_tokenizer(config.text_model, config.trust_remote_code)
    config.pooling = resolve_pooling(config.text_model, backbone.config.model_type, config.pooling)
    model = EmotionModel({"T": TextEncoder(backbone, config.pooling)}, len(LABELS[config.task]), config.dropout)
    if init_weights:
        load_matching(model, init_weights)
    apply_mode(model, config.mode, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
    return Built(model, tokenizer)


def load_matching(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """Copy the tensors of `weights` whose names and shapes match `model`'s, flag them for the
    checkpoint, and return their names."""
    own = model.state_dict()
    matching = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matching, strict=False)
    mark_initialised(model, matching)
    return sorted(matching)


def load_rows(config: ExperimentConfig, split: str) -> pd.DataFrame:
    """The MELD rows of `split` from the config's data folder."""
    return load_split(config.data, split)


def make_dataset(config: ExperimentConfig, built: Built, rows: pd.DataFrame) -> UtteranceDataset:
    """Preprocess `rows` (tokenise the text once) into a dataset for `built`'s model."""
    text = tokenize_rows(rows, built.tokenizer, config.context, config.max_length)
    return UtteranceDataset(label_ids(rows, config.task), text=text)


def train_loader(config: ExperimentConfig, built: Built, dataset: UtteranceDataset) -> DataLoader:
    """Shuffled, length-grouped training batches."""
    sampler = LengthGroupedBatchSampler(dataset.lengths(), config.batch_size, config.seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=Collator(built.pad_token_id),
                      pin_memory=torch.cuda.is_available())


def eval_loader(config: ExperimentConfig, built: Built, dataset: UtteranceDataset) -> DataLoader:
    """Batches in row order for evaluation, twice the training batch size."""
    return DataLoader(dataset, batch_size=config.batch_size * 2, shuffle=False,
                      collate_fn=Collator(built.pad_token_id), pin_memory=torch.cuda.is_available())


def has_split(config: ExperimentConfig, split: str) -> bool:
    """Whether the data folder has the CSV of `split`."""
    return csv_path(config.data, split).is_file()
