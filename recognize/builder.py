"""From an ExperimentConfig to the objects a run needs: the model (backbones loaded, mode
applied), the preprocessed splits and their DataLoaders."""

import os
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from recognize.cache import FeatureDataset, cached_features, collate_features, uses_cache
from recognize.checkpoint import CONFIG
from recognize.config import ExperimentConfig
from recognize.dataset.audio import AudioFeatures, check_audio_fits, minimum_samples, read_waveform
from recognize.dataset.loader import Collator, LengthGroupedBatchSampler, MediaSource, UtteranceDataset
from recognize.dataset.media import MEDIA_FOLDER, MediaIndex, index_media
from recognize.dataset.meld import csv_path, label_ids, load_split
from recognize.dataset.text import TextEncoding, tokenize_rows
from recognize.dataset.video import VideoFrames, read_frames
from recognize.digest import model_config_digest
from recognize.errors import RecognizeError
from recognize.labels import LABELS
from recognize.model.classifier import EmotionModel
from recognize.model.encoders import (AudioEncoder, TextEncoder, VideoEncoder, check_text_fits, load_backbone, load_tokenizer,
                                      resolve_pooling)
from recognize.model.fusion import FUSIONS
from recognize.model.modes import apply_mode, mark_initialised

MEDIA_MODALITIES: tuple[str, ...] = ("A", "V")


@dataclass
class Built:
    """A model and what turns MELD rows into its inputs, per modality."""

    model: EmotionModel
    tokenizer: Any = None
    audio: Optional[AudioFeatures] = None
    video: Optional[VideoFrames] = None
    initialised: list[str] = field(default_factory=list)
    """Names of the tensors loaded from `init_weights` (an earlier stage), sorted."""
    weight_digests: dict[str, str] = field(default_factory=dict)
    """Per modality, the digest of its encoder's weights (the feature cache's key; computed once)."""
    config_digests: dict[str, str] = field(default_factory=dict)
    """Per modality, the digest of its backbone's config.json (`digest.model_config_digest`)."""

    @property
    def pad_token_id(self) -> int:
        """The tokenizer's padding id (0 when it has none or there is no text)."""
        return getattr(self.tokenizer, "pad_token_id", None) or 0


@dataclass
class SplitData:
    """A split ready for a DataLoader, what its media index found missing, and per media
    modality which of its rows the index found a usable clip for."""

    dataset: UtteranceDataset
    rows: pd.DataFrame
    media_report: dict[str, Any] = field(default_factory=dict)
    indexed: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SplitInputs:
    """The rows of a split and what preprocessing reads from them, each computed once: every
    row's token ids (None without text) and each media modality's probed clips."""

    rows: pd.DataFrame
    text: Optional[list[TextEncoding]]
    indexes: dict[str, MediaIndex]


MODEL_FLAGS = {"T": "--text-model", "A": "--audio-model", "V": "--video-model"}
"""The option that names each modality's encoder, quoted in load errors."""


def build_model(config: ExperimentConfig, init_weights: "dict[str, torch.Tensor] | None" = None,
                new_run: bool = True) -> Built:
    """Load the backbones and preprocessors, resolve `auto` pooling into `config`, load
    `init_weights` (names and shapes that match), then apply the training mode; `new_run`
    False: the model of a saved checkpoint, whose settings were checked when it trained."""
    fusion_class = fusion_for(config)
    built = Built(model=None)  # type: ignore[arg-type]
    encoders: dict[str, nn.Module] = {}
    for modality in config.modalities:
        model_id = config.model_id(modality)
        backbone = load_backbone(model_id, config.trust_remote_code, MODEL_FLAGS[modality])
        built.config_digests[modality] = model_config_digest(model_id)
        if modality == "T":
            built.tokenizer = load_tokenizer(model_id, config.trust_remote_code)
            check_text_fits(model_id, built.tokenizer, backbone.config, config.max_length)
            config.pooling = resolve_pooling(model_id, backbone, config.pooling, new_run)
            encoders["T"] = TextEncoder(backbone, config.pooling)
        elif modality == "A":
            built.audio = AudioFeatures(model_id, config.trust_remote_code, minimum_samples(backbone.config))
            check_audio_fits(model_id, built.audio, backbone.config, config.max_audio_seconds if new_run else None)
            encoders["A"] = AudioEncoder(backbone)
        else:
            built.video = VideoFrames(model_id, config.trust_remote_code)
            encoders["V"] = VideoEncoder(backbone)
    fusion = None
    if fusion_class is not None:
        fusion = fusion_class([encoders[m].output_size for m in config.modalities], config.fusion_dim, config.lmf_rank)
        check_fusion_size(fusion, config)
    built.model = EmotionModel(encoders, len(LABELS[config.task]), config.dropout, fusion)
    if init_weights:
        built.initialised = load_matching(built.model, init_weights)
    apply_mode(built.model, config.mode, config.lora_r, config.lora_alpha, config.lora_dropout, config.lora_targets)
    if config.compile:
        for encoder in built.model.encoders.values():
            encoder.backbone.compile(dynamic=True)  # in place: parameter names, and so checkpoints, stay as they are
    return built


def fusion_for(config: ExperimentConfig, checkpoint: Optional[Path] = None) -> "type[nn.Module] | None":
    """The fusion class of a run of several modalities (None for one); RecognizeError for
    a name not in FUSIONS, naming `--fusion`, or the `checkpoint` folder's config.json when
    the config is a saved run's (whose fusion may have been registered by the script that
    trained it)."""
    if len(config.modalities) == 1:
        return None
    if config.fusion not in FUSIONS:
        valid = ", ".join(FUSIONS)
        if checkpoint is None:
            raise RecognizeError(f"--fusion: unknown value '{config.fusion}'; valid: {valid}")
        raise RecognizeError(f"{checkpoint / CONFIG}: fusion '{config.fusion}' is not in "
                             f"recognize.model.fusion.FUSIONS ({valid}); a fusion of your own must be registered "
                             f"there (FUSIONS['{config.fusion}'] = ...) before its checkpoints load")
    return FUSIONS[config.fusion]


def check_fusion_size(fusion: nn.Module, config: ExperimentConfig) -> None:
    """TypeError unless `fusion` keeps the width it was built with as `output_size`, as every
    fusion of FUSIONS must: the classification head is built to read that many values."""
    size = getattr(fusion, "output_size", None)
    if size != config.fusion_dim:
        raise TypeError(f"fusion '{config.fusion}' ({type(fusion).__name__}): its output_size attribute is {size!r}, "
                        f"not the output_size it was built with ({config.fusion_dim}); a fusion module sets "
                        "self.output_size = output_size, the width of the vector it returns, which the head reads")


def load_matching(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> list[str]:
    """Copy the tensors of `weights` whose names and shapes match `model`'s, flag them for the
    checkpoint, and return their names."""
    own = model.state_dict()
    matching = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(matching, strict=False)
    mark_initialised(model, matching)
    return sorted(matching)


def load_rows(config: ExperimentConfig, split: str) -> pd.DataFrame:
    """The MELD rows of `split` from the config's data folder, after checking that the
    folder holds the split's media folder of every audio/video modality the run uses."""
    rows = load_split(config.data, split)
    for modality in config.modalities:
        if modality in MEDIA_MODALITIES:
            folder, extension = MEDIA_FOLDER[modality]
            if not (Path(config.data) / folder / split).is_dir():
                raise RecognizeError(
                    f"{Path(config.data) / folder / split}: no such folder; --modal {config.modal} reads "
                    f"{folder}/{split}/dia{{D}}_utt{{U}}.{extension} beside the CSVs (`emotion-recognize prepare` writes them)")
    return rows


def read_inputs(config: ExperimentConfig, built: Built, split: str, rows: Optional[pd.DataFrame] = None) -> SplitInputs:
    """`split`'s rows (loaded when not given), every row tokenised (a kept row's context holds
    the utterances before it, clips or not) and each media modality's clips indexed and probed."""
    rows = load_rows(config, split) if rows is None else rows
    text = (tokenize_rows(rows, built.tokenizer, config.context, config.max_length, config.future_context)
            if "T" in config.modalities else None)
    indexes = {m: index_media(config.data, split, rows, m) for m in config.modalities if m in MEDIA_MODALITIES}
    return SplitInputs(rows, text, indexes)


def make_split(config: ExperimentConfig, built: Built, split: str, training: bool = False,
               rows: Optional[pd.DataFrame] = None, inputs: Optional[SplitInputs] = None) -> SplitData:
    """Preprocess `split` into a dataset: its `inputs` when given (`read_inputs`' work not
    done twice), else those of its `rows` (loaded when not given).

    Rows whose clip is missing or unreadable are dropped when `training` and the config's
    `missing_media` is "skip"; otherwise they stay, to be zero-filled and masked."""
    inputs = read_inputs(config, built, split, rows) if inputs is None else inputs
    rows, text, indexes = inputs.rows, inputs.text, inputs.indexes
    report: dict[str, Any] = {m: index.summary() for m, index in indexes.items()}
    indexed = {m: np.array([path is not None for path in index.paths], dtype=bool) for m, index in indexes.items()}
    absent = np.zeros(len(rows), dtype=bool)  # rows missing the clip of at least one modality
    for usable in indexed.values():
        absent |= ~usable
    keep = ~absent if training and config.missing_media == "skip" else np.ones(len(rows), dtype=bool)
    if indexes:
        report["rows_skipped"] = int((~keep).sum())
        report["rows_zero_filled"] = int((absent & keep).sum())
    for modality, usable in indexed.items():
        if not usable.any():  # a misnamed folder or clips: the run would learn or score that modality from nothing
            raise RecognizeError(no_clip_usable(config, split, modality, len(rows), report))
    if not keep.any():
        raise RecognizeError(f"{config.data}: no {split} row has a usable clip for --modal {config.modal}; "
                             f"{media_note(report)}")
    media = {m: MediaSource(index.paths, clip_reader(m, config, built)) for m, index in indexes.items()}
    lengths = indexes["A"].lengths if "A" in indexes and text is None else None
    dataset = UtteranceDataset(label_ids(rows, config.task), text=text, media=media, lengths=lengths)
    if uses_cache(config):
        dataset = cached_features(config, built, split, dataset, {m: index.paths for m, index in indexes.items()},
                                  loader_for=lambda view: eval_loader(config, built, view))
    if not keep.all():
        dataset, rows = dataset.subset(np.flatnonzero(keep)), rows[keep].reset_index(drop=True)
        indexed = {m: usable[keep] for m, usable in indexed.items()}
    return SplitData(dataset, rows, report, indexed)


def no_clip_usable(config: ExperimentConfig, split: str, modality: str, rows: int, report: dict[str, Any]) -> str:
    """The error for a split none of whose `rows` has a usable clip of `modality`: where the
    clips were looked for, under which names, and what that folder holds instead."""
    folder, extension = MEDIA_FOLDER[modality]
    where = Path(config.data) / folder / split
    example = next((p.name for p in sorted(where.iterdir()) if not p.name.startswith(".")), None)
    holds = f"it holds e.g. {example}" if example else "it is empty"
    return (f"{where}: none of the {rows} {split} rows has a usable clip (--modal {config.modal} reads "
            f"dia{{D}}_utt{{U}}.{extension} here; {holds}): {report[modality]['missing']} missing, "
            f"{report[modality]['unreadable']} unreadable")


def media_note(report: dict[str, Any]) -> str:
    """One line on a split's missing and unreadable clips and what became of their rows ("" if none)."""
    parts = [f"{m}: {r['missing']} missing, {r['unreadable']} unreadable clips"
             + (f", {r['failed_on_read']} failed to decode" if r.get("failed_on_read") else "")
             for m, r in report.items() if isinstance(r, dict) and (r["missing"] or r["unreadable"] or r.get("failed_on_read"))]
    if not parts:
        return ""
    return f"{'; '.join(parts)} ({report['rows_skipped']} rows skipped, {report['rows_zero_filled']} zero-filled and masked)"


def train_loader(config: ExperimentConfig, built: Built, dataset: UtteranceDataset) -> DataLoader:
    """Shuffled, length-grouped training batches."""
    sampler = LengthGroupedBatchSampler(dataset.lengths(), config.batch_size, config.seed)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=_collator(built, dataset), **_loader_options(config, dataset))


def eval_loader(config: ExperimentConfig, built: Built, dataset: UtteranceDataset) -> DataLoader:
    """Batches for evaluation, twice the training batch size, longest rows first: batches of
    similar lengths pad little (MELD's dev and test in row order pad to 2.7x their tokens,
    sorted to 1.1x). Every batch carries its rows' "index"; readers put rows back in order.

    A speech encoder that hears a padded clip's padding (group-norm models such as
    wav2vec2-base, which take no attention mask, and data2vec-audio and Wav2Vec2-Conformer,
    whose convolutions carry the padding into the clip) would give a row an output that depends
    on the rows batched with it: it gets one row per batch, and eval, predict, the feature
    cache and a run on several GPUs give every row the same output at any batch size."""
    lengths = dataset.lengths()
    order = sorted(range(len(dataset)), key=lambda i: -lengths[i])  # stable: equal lengths keep row order
    audio = built.model.encoders["A"] if "A" in built.model.encoders else None
    unpadded = audio is not None and not audio.padding_free and not isinstance(dataset, FeatureDataset)
    return DataLoader(dataset, batch_size=1 if unpadded else config.batch_size * 2, sampler=order,
                      collate_fn=_collator(built, dataset), **_loader_options(config, dataset))


def has_split(config: ExperimentConfig, split: str) -> bool:
    """Whether the data folder has the CSV of `split`."""
    return csv_path(config.data, split).is_file()


def clip_reader(modality: str, config: ExperimentConfig, built: Built) -> Callable[[Path], Any]:
    """The function that reads one clip of `modality` into the model's per-sample input."""
    if modality == "A":
        return partial(read_waveform, rate=built.audio.sampling_rate, max_seconds=config.max_audio_seconds)
    return partial(_read_video, preprocess=built.video)


def _read_video(path: Path, preprocess: VideoFrames) -> torch.Tensor:
    """`num_frames` frames of a clip, resized and normalised for the video model."""
    return preprocess(read_frames(path, preprocess.num_frames))


def _collator(built: Built, dataset: UtteranceDataset) -> Callable[[list[dict]], dict]:
    """The batch collator for `built`'s modalities (cached features are only stacked)."""
    if isinstance(dataset, FeatureDataset):
        return collate_features
    video_shape: tuple[int, ...] = ()
    if built.video is not None:
        blank = np.zeros((built.video.num_frames, 64, 64, 3), dtype=np.uint8)
        video_shape = tuple(built.video(blank).shape)
    return Collator(built.pad_token_id, audio=built.audio, video_shape=video_shape)


def _loader_options(config: ExperimentConfig, dataset: UtteranceDataset) -> dict[str, Any]:
    """DataLoader workers (for reading audio and video), pinned memory on GPU, and a
    generator of the loader's own for the workers' seeds: drawn from the global one, that
    seed would shift every dropout mask after the first epoch an iterator starts in (with
    persistent workers, epoch 1 of a run but the first resumed epoch of a resumed one)."""
    workers = config.workers
    if workers < 0:
        workers = min(4, os.cpu_count() or 1) if dataset.media else 0
    return {"num_workers": workers, "persistent_workers": workers > 0, "pin_memory": torch.cuda.is_available(),
            "generator": torch.Generator().manual_seed(config.seed)}
