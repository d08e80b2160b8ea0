"""ExperimentConfig: the one source of truth for a run. Every `train` flag is a field here,
with its help text beside it, and the checkpoint folder's name is derived from it."""

import dataclasses
import math
import numbers
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Optional

from recognize.errors import RecognizeError
from recognize.labels import LABELS, TASK_LETTER

MODALITIES: tuple[str, ...] = ("T", "A", "V")
"""Text, audio, video, in the order they are joined in names (`T+A+V`)."""

MODES: dict[str, str] = {"full": "T", "lora": "L", "frozen": "F"}
"""Training mode -> its letter in checkpoint names (full Tuning, LoRA, Frozen backbones)."""

POOLINGS: tuple[str, ...] = ("auto", "cls", "mean", "last")
PRECISIONS: tuple[str, ...] = ("auto", "no", "fp16", "bf16")
MISSING_MEDIA: tuple[str, ...] = ("skip", "zero")
LOGS: tuple[str, ...] = ("none", "tensorboard")
DISTILL_LOSSES: tuple[str, ...] = ("kd", "dist", "feature", "kd+feature", "dist+feature")
"""`--distill` values: one loss, or a response loss (kd, dist) with the feature loss added, as TelME trains its students."""
RESPONSE_LOSSES: tuple[str, ...] = ("kd", "dist")
"""The losses that compare class scores (and so need a teacher of the same label type)."""
DISTILL_DEFAULTS: dict[str, tuple[float, float]] = {"kd": (0.5, 2.0), "dist": (1.0, 1.0), "feature": (1.0, 0.1)}
"""Distillation loss -> its default (--distill-weight, --temperature): KD mixes its soft term
as weight * tau^2 * KL with (1 - weight) * CE, at tau 2; DIST adds weight * tau^2 * (inter +
intra) to CE, at DIST's tau 1; the feature loss adds weight * its KL to CE at tau 0.1, as
contrastive losses over cosines do (cosines lie in [-1, 1]: at tau 1 a batch's softmax is
nearly flat)."""
DEFAULT_LR: dict[str, float] = {"full": 2e-5, "lora": 2e-4, "frozen": 1e-3}
MAX_SEED = 2**32 - 1
"""The largest seed numpy's generators take."""
RESULT_NEUTRAL: frozenset[str] = frozenset({"compile", "cache", "cache_dir", "workers", "log", "keep_last"})
"""Settings that change how fast a run goes, where it logs or what else it keeps, not what it learns."""
INIT_EPOCHS: tuple[str, ...] = ("best", "last")
"""`--init-epoch` values: which epoch's weights an `--init-from` checkpoint gives."""


def _opt(default: Any, help: str, flag: Optional[str] = None, cli: bool = True, **kwargs: Any) -> Any:
    """A dataclass field carrying its CLI help text (and flag name, when it differs; no flag
    at all when not `cli`)."""
    metadata = {"help": help, "cli": cli, **({"flag": flag} if flag else {})}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata, **kwargs)
    return field(default=default, metadata=metadata, **kwargs)


@dataclass
class ExperimentConfig:
    """Everything that defines a training run; saved whole into the checkpoint's config.json."""

    data: str = _opt("datasets/MELD", "MELD folder: the three *_sent_emo.csv files at its root.")
    modal: str = _opt("T", "Modalities, '+'-joined from T (text), A (audio), V (video), e.g. T or T+A.")
    task: str = _opt("emotion", "Label type: emotion (7 classes) or sentiment (3 classes).", flag="--label-type")
    mode: str = _opt("full", "Training mode: full (T), lora (L) or frozen (F) backbones.")
    text_model: str = _opt("sentence-transformers/all-mpnet-base-v2", "Text encoder: Hugging Face model id or local folder.")
    audio_model: str = _opt("facebook/wav2vec2-base", "Audio encoder: Hugging Face model id or local folder.")
    video_model: str = _opt("google/vivit-b-16x2-kinetics400", "Video encoder: Hugging Face model id or local folder.")
    fusion: str = _opt("lmf", "Fusion network for several modalities: lmf, tfn, concat or attention (text-led cross-modal attention).")
    fusion_dim: int = _opt(64, "Size of the fused vector the classification head reads (several modalities).")
    lmf_rank: int = _opt(4, "Rank of LMF's modality-specific factors.")
    context: int = _opt(0, "Previous utterances of the dialogue added before the target, with speaker names (0 = utterance only).")
    future_context: int = _opt(0, "Next utterances of the dialogue added after the target, with speaker names, behind the tokenizer's separator (EmoBERTa-style; 0 = none): for offline analysis of whole dialogues.")
    pooling: str = _opt("auto", "Text pooling: auto (a local sentence-transformers folder's own 1_Pooling mean, CLS or last token; else mean for a sentence-transformers/ id, CLS for BERT-like model types such as BERT, RoBERTa, MPNet, DeBERTa, mean for others), cls, mean, or last (the last real token; cls is refused for decoder-only models such as GPT-2 and Llama).")
    max_length: int = _opt(128, "Token budget per sample; the context is truncated first, never the target utterance.")
    max_audio_seconds: float = _opt(8.0, "Audio is cropped to this many seconds (MELD: median 2.5 s, 95th percentile 8 s).")
    missing_media: str = _opt("skip", "Training rows whose audio/video clip is missing or unreadable: skip them, or zero-fill and mask (zero). Evaluation always zero-fills, keeping every row.")
    cache: bool = _opt(True, "Frozen mode: compute each encoder's pooled features once per split, store them in the feature cache and train on them (--no-cache: run the encoders every step).")
    cache_dir: str = _opt("", "Feature cache folder (default: $EMOTION_RECOGNIZE_CACHE, else ~/.cache/emotion-recognize).")
    workers: int = _opt(-1, "DataLoader worker processes reading audio/video (-1: up to 4, by the machine's cores; text needs none).")
    epochs: int = _opt(4, "Training epochs (upper bound when early stopping is on).")
    batch_size: int = _opt(32, "Samples per optimiser step on each device (before gradient accumulation).")
    lr: Optional[float] = _opt(None, "Peak learning rate (default: 2e-5 full, 2e-4 lora, 1e-3 frozen).")
    head_lr: Optional[float] = _opt(None, "Peak learning rate of the fusion and the classification head (default: --lr); layers trained from scratch on a pretrained backbone often want more.")
    weight_decay: float = _opt(0.01, "AdamW weight decay (not applied to biases and norms).")
    warmup: float = _opt(0.1, "Warm-up as a fraction of all optimiser steps, then linear decay to 0.")
    grad_clip: float = _opt(1.0, "Clip the gradient norm to this value (0 = off).")
    grad_accum: int = _opt(1, "Gradient accumulation steps.")
    precision: str = _opt("auto", "Mixed precision: auto (bf16 on a GPU that has it, else fp16 on GPU, none on CPU), no, fp16, bf16.")
    compile: bool = _opt(False, "Compile the backbones with torch.compile (dynamic shapes): a one-off compile of a minute or so, meant for long GPU runs (on a 2-core CPU it was slower).")
    patience: int = _opt(0, "Early stopping: stop after this many epochs without a better dev weighted-F1 (0 = off).")
    class_weights: bool = _opt(False, "Weight the loss by inverse class frequency of the training split.")
    label_smoothing: float = _opt(0.0, "Label smoothing of the cross-entropy: the target spreads this share evenly over all classes (0 = off; Szegedy et al., 2016). Not with --teacher.")
    focal_gamma: float = _opt(0.0, "Focal loss: each row's cross-entropy times (1 - p)^G, p the probability of its label, so easy rows weigh less (0 = plain cross-entropy; Lin et al., 2017). Not with --teacher.")
    layer_decay: float = _opt(1.0, "Layer-wise learning-rate decay of the encoders: the top layer trains at --lr, each layer below at this factor times the rate above it, the embeddings lowest (1 = off; e.g. 0.8; ELECTRA, BEiT). Full tuning and LoRA.")
    ema_decay: float = _opt(0.0, "Weight averaging: keep an exponential moving average of the weights that train, updated after every optimiser step t with decay min(D, (1 + t) / (10 + t)); dev, the best epoch and the saved weights are the average's (0 = off; e.g. 0.999; Polyak averaging, with TensorFlow's ExponentialMovingAverage ramp).")
    dropout: float = _opt(0.1, "Dropout before the classification head.")
    lora_r: int = _opt(8, "LoRA rank.")
    lora_alpha: int = _opt(16, "LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = _opt(0.05, "LoRA dropout.")
    lora_targets: str = _opt("", "Comma-separated module names LoRA adapts (default: the attention query/value projections).")
    log: str = _opt("none", "Also log every epoch's numbers to: none, or tensorboard (event files in the run's tensorboard/ folder; the tensorboard extra). history.csv is always written.")
    seed: int = _opt(42, "Random seed; a CPU run with the same seed repeats exactly.")
    seed_folder: bool = _opt(False, "The run is one seed of several (`train --seeds`): its folder is run_name/seed-{seed}.", cli=False)
    teacher: str = _opt("", "Checkpoint folder of a trained teacher (e.g. a text model) distilled into this run: its outputs on the training rows are computed once, cached, and matched to the rows by dialogue and utterance id.")
    teacher_ensemble: bool = _opt(False, "With --teacher a setting folder (a `train --seeds` run): learn from all its seeds together, their mean class probabilities (Hinton et al., 2015 distil an ensemble into one model), rather than each seed from the teacher's same seed. kd or dist only.")
    distill: str = _opt("", "Distillation loss with --teacher: kd (Hinton), dist (Huang et al., 2022), feature (TelME's relational loss on the head's input vectors), or kd+feature / dist+feature (both terms, as TelME trains its students). Default: kd.")
    distill_weight: Optional[float] = _opt(None, "Weight of the distillation term (kd: its share against cross-entropy, in [0, 1]; default 0.5 for kd, 1 for dist and feature); with kd+feature or dist+feature, the kd / dist term's.")
    temperature: Optional[float] = _opt(None, "Distillation temperature tau (default 2 for kd, 1 for dist, 0.1 for feature); with kd+feature or dist+feature, the kd / dist term's.")
    feature_weight: Optional[float] = _opt(None, "With --distill kd+feature or dist+feature: weight of the feature term (default 1).")
    feature_temperature: Optional[float] = _opt(None, "With --distill kd+feature or dist+feature: temperature of the feature term (default 0.1).")
    output_dir: str = _opt("checkpoints", "Folder under which the run's checkpoint folder is created.")
    init_from: list[str] = _opt([], "Checkpoint folder whose matching weights initialise this model (repeatable).")
    init_epoch: str = _opt("best", "Which weights the --init-from checkpoints give: best (their best dev epoch's, model.safetensors) or last (their last epoch's, last.safetensors, which --keep-last saves).")
    keep_last: bool = _opt(False, "Also keep the last epoch's weights, as last.safetensors beside the best epoch's model.safetensors, for a later stage's --init-epoch last.")
    trust_remote_code: bool = _opt(False, "Allow model code from the model's repository (off unless you pass this).")

    def __post_init__(self) -> None:
        self._normalise_numbers()
        self.modal = normalise_modal(self.modal)
        self.task = _choose("--label-type", self.task, {**{t: t for t in LABELS}, "e": "emotion", "s": "sentiment"})
        self.mode = _choose("--mode", self.mode, {**{m: m for m in MODES}, **{v: k for k, v in MODES.items()}})
        self.pooling = _choose("--pooling", self.pooling, {p: p for p in POOLINGS})
        self.precision = _choose("--precision", self.precision, {p: p for p in PRECISIONS})
        self.missing_media = _choose("--missing-media", self.missing_media, {p: p for p in MISSING_MEDIA})
        self.log = _choose("--log", self.log, {p: p for p in LOGS})
        self.init_epoch = _choose("--init-epoch", self.init_epoch, {e: e for e in INIT_EPOCHS})
        self.fusion = self.fusion.lower()
        if not re.fullmatch(r"[a-z0-9_]+", self.fusion):
            raise RecognizeError(f"--fusion: '{self.fusion}' is not a fusion name (letters, digits, underscores)")
        self._check_numbers()
        self.init_from = [str(p) for p in self.init_from]
        self._check_distillation()
        self._anchor_local_paths()

    def _anchor_local_paths(self) -> None:
        """Make the data folder, model folders, teacher and `--init-from` sources that exist
        here absolute (links are kept, not resolved), so that a checkpoint's config.json
        works from any working folder; hub ids and paths that do not exist stay as given."""
        def anchored(value: str) -> str:
            return str(Path(value).absolute()) if value and Path(value).exists() else value

        self.data, self.teacher = anchored(self.data), anchored(self.teacher)
        self.text_model, self.audio_model, self.video_model = map(anchored, (self.text_model, self.audio_model, self.video_model))
        self.init_from = [anchored(p) for p in self.init_from]

    def _normalise_numbers(self) -> None:
        """Make every int and float field a plain Python int or float (a numpy number from a
        script's sweep is one; it would not go into config.json), or fail with a one-line
        error naming its flag for a value that is not a number of that kind (a string, a bool)."""
        for item in dataclasses.fields(self):
            kind = {int: int, float: float, Optional[float]: float}.get(item.type)
            value = getattr(self, item.name)
            if kind is None or (value is None and item.type == Optional[float]):
                continue
            wanted = numbers.Integral if kind is int else numbers.Real
            if isinstance(value, bool) or not isinstance(value, wanted):
                raise RecognizeError(f"{cli_flag(item.name)}: expected {'an integer' if kind is int else 'a number'}, "
                                     f"got {value!r} ({type(value).__name__})")
            setattr(self, item.name, kind(value))

    def _check_numbers(self) -> None:
        """Range checks of the numeric flags, each failing with a one-line error naming its flag."""
        if not (math.isfinite(self.max_audio_seconds) and self.max_audio_seconds > 0):
            raise RecognizeError(f"--max-audio-seconds: must be positive, got {self.max_audio_seconds}")
        for name in ("lr", "head_lr", "weight_decay", "grad_clip"):  # a learning rate of 0: a run that does not learn
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise RecognizeError(f"{cli_flag(name)}: must be 0 or more, got {value}")
        if not (math.isfinite(self.layer_decay) and 0.0 < self.layer_decay <= 1.0):
            raise RecognizeError(f"--layer-decay: a factor in (0, 1], got {self.layer_decay}")
        if not (math.isfinite(self.focal_gamma) and self.focal_gamma >= 0):
            raise RecognizeError(f"--focal-gamma: must be 0 or more, got {self.focal_gamma}")
        for name in ("dropout", "lora_dropout", "warmup", "label_smoothing", "ema_decay"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise RecognizeError(f"{cli_flag(name)}: a fraction in [0, 1), got {getattr(self, name)}")
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "lora_r", "lora_alpha", "fusion_dim", "lmf_rank"):
            if getattr(self, name) < 1:
                raise RecognizeError(f"{cli_flag(name)}: must be at least 1, got {getattr(self, name)}")
        for name in ("context", "future_context", "patience"):
            if getattr(self, name) < 0:
                raise RecognizeError(f"{cli_flag(name)}: must be 0 or more, got {getattr(self, name)}")
        if self.workers < -1:
            raise RecognizeError(f"--workers: 0 or more, or -1 for automatic, got {self.workers}")
        highest = MAX_SEED - (self.epochs - 1)  # epoch k seeds numpy with seed + k
        if not 0 <= self.seed <= highest:
            raise RecognizeError(f"--seed: must be 0 to {highest} (each epoch seeds numpy, which takes below 2^32, "
                                 f"with seed + epoch), got {self.seed}")

    def _check_distillation(self) -> None:
        """Validate the distillation flags and fill in the chosen loss's defaults (with --teacher);
        without --teacher, none of them may be set."""
        self.teacher = str(self.teacher)
        if not self.teacher:
            given = [flag for flag, value in (("--teacher-ensemble", self.teacher_ensemble), ("--distill", self.distill),
                                              ("--distill-weight", self.distill_weight),
                                              ("--temperature", self.temperature), ("--feature-weight", self.feature_weight),
                                              ("--feature-temperature", self.feature_temperature))
                     if value is not False and value not in ("", None)]
            if given:
                raise RecognizeError(f"{', '.join(given)}: only with --teacher")
            return
        if self.label_smoothing:
            raise RecognizeError("--label-smoothing: not with --teacher (the distillation loss's soft targets stand in for it)")
        if self.focal_gamma:
            raise RecognizeError("--focal-gamma: not with --teacher (the distillation loss replaces the cross-entropy)")
        self.distill = _choose("--distill", self.distill or "kd", {d: d for d in DISTILL_LOSSES})
        weight, temperature = DISTILL_DEFAULTS[self.distill.split("+")[0]]
        self.distill_weight = weight if self.distill_weight is None else float(self.distill_weight)
        self.temperature = temperature if self.temperature is None else float(self.temperature)
        if "+" in self.distill:
            weight, temperature = DISTILL_DEFAULTS["feature"]
            self.feature_weight = weight if self.feature_weight is None else float(self.feature_weight)
            self.feature_temperature = temperature if self.feature_temperature is None else float(self.feature_temperature)
        elif self.feature_weight is not None or self.feature_temperature is not None:
            raise RecognizeError(f"--feature-weight, --feature-temperature: only with --distill kd+feature or dist+feature "
                                 f"(--distill {self.distill} takes --distill-weight and --temperature)")
        if self.response_loss == "kd" and not 0.0 <= self.distill_weight <= 1.0:
            raise RecognizeError(f"--distill-weight: kd's weight is a share in [0, 1], got {self.distill_weight}")
        for flag, value in (("--distill-weight", self.distill_weight), ("--feature-weight", self.feature_weight)):
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise RecognizeError(f"{flag}: must be 0 or more, got {value}")
        for flag, value in (("--temperature", self.temperature), ("--feature-temperature", self.feature_temperature)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise RecognizeError(f"{flag}: must be positive, got {value}")
        if self.teacher_ensemble and self.feature_distillation:
            raise RecognizeError(f"--teacher-ensemble: --distill {self.distill} matches the head's input vectors, which each "
                                 "seed of the teacher learns in its own space; use kd or dist")
        if self.feature_distillation and self.mode == "frozen" and len(self.modalities) == 1:
            raise RecognizeError(f"--distill {self.distill}: a frozen single-modality student's vectors are its frozen "
                                 "encoder's, which the feature loss cannot move; use --mode full or lora, or kd / dist")

    @property
    def response_loss(self) -> Optional[str]:
        """The distillation loss on class scores (kd or dist) this run uses, if any."""
        return next((part for part in self.distill.split("+") if part in RESPONSE_LOSSES), None)

    @property
    def feature_distillation(self) -> bool:
        """Whether this run's distillation includes the feature loss."""
        return "feature" in self.distill.split("+")

    @property
    def modalities(self) -> list[str]:
        """The modalities of this run, e.g. ["T", "A"]."""
        return self.modal.split("+")

    @property
    def learning_rate(self) -> float:
        """The peak learning rate: `lr` if given, else the mode's default."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    @property
    def head_learning_rate(self) -> float:
        """The peak learning rate of the fusion and the head: `head_lr` if given, else `learning_rate`."""
        return self.head_lr if self.head_lr is not None else self.learning_rate

    def model_id(self, modality: str) -> str:
        """The Hugging Face id or folder of the encoder for `modality` ("T", "A" or "V")."""
        return {"T": self.text_model, "A": self.audio_model, "V": self.video_model}[modality]

    @property
    def run_name(self) -> str:
        """The checkpoint folder name: `{modal}--{task}{mode}({backbone})`, or with `--{FUSION}` when multimodal."""
        letters = f"{TASK_LETTER[self.task]}{MODES[self.mode]}"
        backbones = "+".join(backbone_name(self.model_id(m)) for m in self.modalities)
        fusion = f"--{self.fusion.upper()}" if len(self.modalities) > 1 else ""
        return f"{self.modal}--{letters}{fusion}({backbones})"

    @property
    def setting_dir(self) -> Path:
        """The folder named after the run's setting: `output_dir/run_name`."""
        return Path(self.output_dir) / self.run_name

    @property
    def run_dir(self) -> Path:
        """Where this run's checkpoint folder goes: `setting_dir`, or `setting_dir/seed-{seed}`
        for one seed of several."""
        return self.setting_dir / f"seed-{self.seed}" if self.seed_folder else self.setting_dir

    def to_dict(self) -> dict[str, Any]:
        """All fields, JSON-ready."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ExperimentConfig":
        """Build from a dict such as a checkpoint's saved config; unknown keys are an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise RecognizeError(f"unknown config keys {unknown}; known: {sorted(known)}")
        return cls(**values)

    @classmethod
    def from_checkpoint(cls, folder: "str | Path", **overrides: Any) -> "ExperimentConfig":
        """The config a checkpoint folder was trained with, with `overrides` applied.
        `trust_remote_code` is off unless `overrides` turns it on: a folder someone else
        wrote must not switch it on for the runs built from it."""
        from recognize.checkpoint import read_checkpoint_config  # checkpoint imports this module

        saved, _ = read_checkpoint_config(folder)
        return cls.from_dict({**saved.to_dict(), "trust_remote_code": False, **overrides})


def cli_flag(field_name: str) -> str:
    """The command-line flag of an ExperimentConfig field: `--label-type` for task, `--max-length` for max_length."""
    field = next(f for f in dataclasses.fields(ExperimentConfig) if f.name == field_name)
    return field.metadata.get("flag", "--" + field_name.replace("_", "-"))


def backbone_name(model_id: str) -> str:
    """The backbone's short name: the last component of its model id or path."""
    name = PurePosixPath(model_id.replace("\\", "/").rstrip("/")).name
    return name if name not in ("", ".", "..") else Path(model_id).resolve().name


def normalise_modal(modal: str) -> str:
    """Validate a modality string and put it in canonical order: "a+t" -> "T+A"."""
    parts = [p.strip().upper() for p in modal.split("+")]
    if not modal.strip() or any(p not in MODALITIES for p in parts) or len(set(parts)) != len(parts):
        raise RecognizeError(f"--modal: unknown value '{modal}'; valid: T, A, V or a '+'-joined combination such as T+A, T+A+V")
    return "+".join(m for m in MODALITIES if m in parts)


def _choose(flag: str, value: str, valid: dict[str, str]) -> str:
    """Map `value` (in any letter case) through `valid`, or fail with a one-line message listing the valid values."""
    key = value if value in valid else value.lower() if value.lower() in valid else value.upper()
    if key not in valid:
        raise RecognizeError(f"{flag}: unknown value '{value}'; valid: {', '.join(valid)}")
    return valid[key]
