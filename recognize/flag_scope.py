"""Which `train` flags a run uses. A flag typed on the command line that the run's mode,
modalities or fusion leave unused (`--lora-r 16 --mode full`, `--context 2 --modal A`) would
change nothing while the researcher believes it did: it is an error naming the flag and what
the run is, never dropped in silence. Defaults never count: only flags given are checked."""

from collections.abc import Callable, Iterable
from typing import Optional

from recognize.config import ExperimentConfig, cli_flag
from recognize.errors import RecognizeError

MODALITY_NAMES: dict[str, str] = {"T": "text", "A": "audio", "V": "video"}


def _lora(config: ExperimentConfig) -> Optional[str]:
    """Why a LoRA setting is unused in `config` (None: it is used)."""
    return None if config.mode == "lora" else f"for --mode lora only (this run: --mode {config.mode})"


def _cache(config: ExperimentConfig) -> Optional[str]:
    """Why `--cache/--no-cache` is unused."""
    if config.mode == "frozen":
        return None
    return f"for --mode frozen only, whose encoders the feature cache stands in for (this run: --mode {config.mode})"


def _cache_dir(config: ExperimentConfig) -> Optional[str]:
    """Why `--cache-dir` is unused: no frozen encoder's features and no teacher's outputs are cached."""
    if (config.mode == "frozen" and config.cache) or config.teacher:
        return None
    return ("for a run that uses the feature cache only: --mode frozen without --no-cache, or --teacher "
            f"(this run: --mode {config.mode}{' --no-cache' if config.mode == 'frozen' else ''}, no --teacher)")


def _needs(modality: str) -> Callable[[ExperimentConfig], Optional[str]]:
    """Why a setting of `modality`'s input or encoder is unused: the run lacks that modality."""
    def unused(config: ExperimentConfig) -> Optional[str]:
        if modality in config.modalities:
            return None
        return f"for a run with {MODALITY_NAMES[modality]} ({modality}) only (this run: --modal {config.modal})"
    return unused


def _media(config: ExperimentConfig) -> Optional[str]:
    """Why `--missing-media` is unused: the run reads no audio or video clip."""
    if {"A", "V"} & set(config.modalities):
        return None
    return f"for a run with audio (A) or video (V) only (this run: --modal {config.modal})"


def _fusion(config: ExperimentConfig) -> Optional[str]:
    """Why a fusion setting is unused: one modality is not fused."""
    if len(config.modalities) > 1:
        return None
    return f"for a run of several modalities only, which fuses them (this run: --modal {config.modal})"


def _lmf(config: ExperimentConfig) -> Optional[str]:
    """Why `--lmf-rank` is unused: no fusion, or another than LMF."""
    if (unfused := _fusion(config)) is not None:
        return unfused
    return None if config.fusion == "lmf" else f"for --fusion lmf only (this run: --fusion {config.fusion})"


def _lr(config: ExperimentConfig) -> Optional[str]:
    """Why `--lr` is unused: in frozen mode only the fusion and head train, at `--head-lr` when given."""
    if config.mode == "frozen" and config.head_lr is not None:
        return "with --mode frozen only the fusion and head train, at --head-lr (give one of the two)"
    return None


def _layer_decay(config: ExperimentConfig) -> Optional[str]:
    """Why `--layer-decay` is unused: no encoder layer trains in frozen mode."""
    if config.mode != "frozen":
        return None
    return "for --mode full or lora only, which train the encoders' layers (this run: --mode frozen)"


def _init_epoch(config: ExperimentConfig) -> Optional[str]:
    """Why `--init-epoch` is unused: no checkpoint initialises the run."""
    return None if config.init_from else "for a run with --init-from only, whose checkpoints it picks the weights of"


SCOPES: dict[str, Callable[[ExperimentConfig], Optional[str]]] = {
    "lora_r": _lora, "lora_alpha": _lora, "lora_dropout": _lora, "lora_targets": _lora,
    "cache": _cache, "cache_dir": _cache_dir,
    "text_model": _needs("T"), "context": _needs("T"), "future_context": _needs("T"), "pooling": _needs("T"), "max_length": _needs("T"),
    "audio_model": _needs("A"), "max_audio_seconds": _needs("A"), "video_model": _needs("V"),
    "missing_media": _media, "fusion": _fusion, "fusion_dim": _fusion, "lmf_rank": _lmf, "lr": _lr,
    "layer_decay": _layer_decay, "init_epoch": _init_epoch,
}
"""ExperimentConfig field -> why a run does not use it (None where it does). The
distillation flags without --teacher, and --seed with --seeds, are refused where they are read."""


def unused_reason(config: ExperimentConfig, name: str) -> Optional[str]:
    """Why `config`'s run leaves setting `name` (a field name) unused, or None where it uses it."""
    return SCOPES[name](config) if name in SCOPES else None


def check_given_flags(config: ExperimentConfig, given: Iterable[str]) -> None:
    """RecognizeError naming each of the `given` settings (field names) that `config`'s run
    leaves unused, grouped by the reason, e.g. "--lora-r, --lora-alpha: for --mode lora only
    (this run: --mode full)"."""
    flags_by_reason: dict[str, list[str]] = {}
    for name in given:
        if (reason := unused_reason(config, name)) is not None:
            flags_by_reason.setdefault(reason, []).append(typed_flag(config, name))
    if flags_by_reason:
        raise RecognizeError("; ".join(f"{', '.join(flags)}: {reason}" for reason, flags in flags_by_reason.items()))


def typed_flag(config: ExperimentConfig, name: str) -> str:
    """The flag of field `name` as typed: `--no-cache` for a switch that is on by default
    turned off, else `cli_flag`."""
    flag = cli_flag(name)
    switched_off = ExperimentConfig.__dataclass_fields__[name].default is True and getattr(config, name) is False
    return f"--no-{flag[2:]}" if switched_off else flag
