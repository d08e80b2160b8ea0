"""The three training modes: full tuning (everything trains, except a wav2vec2-family speech
encoder's convolutional feature encoder, frozen as in Hugging Face's own wav2vec2
fine-tuning; Whisper's convolutions train), LoRA (peft adapters on the backbones' attention
projections, plus the fusion and the head), frozen backbones (the fusion and the head)."""

import re
import warnings

import torch
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers.pytorch_utils import Conv1D

from recognize.digest import tensors_digest
from recognize.errors import RecognizeError
from recognize.model.classifier import EmotionModel

LORA_TARGET_PAIRS: tuple[tuple[str, ...], ...] = (
    ("query", "value"),  # BERT, RoBERTa, ELECTRA
    ("q_proj", "v_proj"),  # Wav2Vec2, HuBERT, WavLM, Whisper, ViViT (transformers v5)
    ("q", "v"),  # MPNet
    ("query_proj", "value_proj"),  # DeBERTa-v2/v3
    ("q_lin", "v_lin"),  # DistilBERT
    ("linear_q", "linear_v"),  # Wav2Vec2-Conformer
    ("qkv",),  # TimeSformer: one fused query/key/value projection
    ("Wqkv",),  # ModernBERT (fused)
    ("c_attn",),  # GPT-2 (fused, a transformers Conv1D)
    ("query_key_value",),  # GPT-NeoX, Falcon, BLOOM (fused)
)
"""Attention query/value projection names across architectures, tried in this order (a
fused projection where the architecture has no separate ones)."""

LORA_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, Conv1D)
"""The layer types LoRA adapts: linear maps, and GPT-2's Conv1D (a linear map stored transposed)."""

INITIALISED_FLAG = "initialised_from_checkpoint"
INITIALISED_BUFFERS = "initialised_buffers"


def lora_targets(backbone: nn.Module) -> list[str]:
    """The module names LoRA adapts by default: the first query/value pair (or fused
    projection) of LORA_TARGET_PAIRS the backbone has."""
    linear_names = {name.rsplit(".", 1)[-1] for name, module in backbone.named_modules() if isinstance(module, LORA_LAYERS)}
    for pair in LORA_TARGET_PAIRS:
        if set(pair) <= linear_names:
            return list(pair)
    raise RecognizeError(
        f"no attention projections found for LoRA in {type(backbone).__name__}; "
        f"name them with --lora-targets (its linear layers: {', '.join(sorted(linear_names))})"
    )


def apply_mode(model: EmotionModel, mode: str, r: int = 8, alpha: int = 16, dropout: float = 0.05, targets: str = "") -> None:
    """Make `model` train as `mode` says ("full", "lora" or "frozen"), in place."""
    if mode == "full":
        model.requires_grad_(True)
        for encoder in model.encoders.values():
            if hasattr(encoder.backbone, "freeze_feature_encoder"):  # speech models: keep the CNN front end
                encoder.backbone.freeze_feature_encoder()
        return
    model.encoders.requires_grad_(False)
    if mode == "frozen":
        model.frozen_encoders = True
        model.encoders.eval()
        return
    requested = [t.strip() for t in targets.split(",") if t.strip()]
    for encoder in model.encoders.values():
        names = requested or lora_targets(encoder.backbone)
        # GPT-2's Conv1D stores its weight transposed: peft needs to know, and warned on every run when left to find out
        transposed = any(isinstance(module, Conv1D) and name.rsplit(".", 1)[-1] in names
                         for name, module in encoder.backbone.named_modules())
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=names, bias="none",
                            fan_in_fan_out=transposed)
        try:
            with warnings.catch_warnings():  # peft 0.21 asks transformers 5 a deprecated question; nothing for a user to do
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
                encoder.backbone = get_peft_model(encoder.backbone, config)
        except ValueError as error:
            unsupported = re.match(r"Target module (\w+)\(", str(error))  # peft prints the module's whole repr
            reason = (f"'{','.join(names)}' names a {unsupported[1]}, not a layer LoRA adapts (a Linear, Embedding or "
                      "convolution, e.g. an attention's query)" if unsupported else str(error).splitlines()[0])
            raise RecognizeError(f"--lora-targets: {reason}") from None
    adapted = adapted_layers(model)
    if unmatched := [t for t in requested if not any(name == t or name.endswith(f".{t}") for name in adapted)]:
        raise RecognizeError(f"--lora-targets: {', '.join(unmatched)} matched no layer of any encoder (peft adapts the "
                             "names it finds and passes over the rest)")


def adapted_layers(model: nn.Module) -> set[str]:
    """The full names of the layers of `model` that carry LoRA adapters."""
    return {name.split(".lora_")[0] for name, _ in model.named_parameters() if ".lora_" in name}


def checkpoint_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """What a checkpoint stores, by name: the parameters that train in the model's mode and the
    running statistics that training updates (`running_statistics`), plus those loaded from an
    earlier checkpoint (`--init-from`), which its model id alone lacks."""
    state = {name: p.detach() for name, p in model.named_parameters() if p.requires_grad or getattr(p, INITIALISED_FLAG, False)}
    state.update({name: buffer.detach() for name, buffer, module in _named_buffers(model)
                  if name.rsplit(".", 1)[-1] in getattr(module, INITIALISED_BUFFERS, ())})
    state.update(running_statistics(model))
    return state


def running_statistics(model: nn.Module) -> dict[str, torch.Tensor]:
    """The running mean, variance and batch count of every batch norm (Wav2Vec2-Conformer's
    convolution module) that runs in training mode while the model trains, by name: all but
    those inside frozen encoders, which stay in eval mode. Training changes them without a
    gradient, so they are no parameters that train, yet evaluation depends on them."""
    frozen = getattr(model, "frozen_encoders", False)
    return {name: buffer.detach() for name, buffer, module in _named_buffers(model)
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats
            and not (frozen and name.startswith("encoders."))}


def unstored_digest(model: nn.Module, stored: "set[str]") -> str:
    """A digest of the tensors of `model` that a checkpoint holding `stored` lacks: the frozen
    backbone, a speech model's CNN, buffers. They come from the backbone folders when the
    checkpoint loads, and its results hold only with the same ones."""
    return tensors_digest({name: tensor for name, tensor in model.state_dict().items() if name not in stored})


def mark_initialised(model: nn.Module, names: "set[str] | list[str]") -> None:
    """Flag the parameters and buffers `names` as loaded from an earlier checkpoint (kept by
    `checkpoint_state`). A parameter carries the flag itself, which survives peft wrapping
    (the same tensors) and moves between devices (the same Parameter, new data); a buffer is
    replaced by a new tensor on each move, so its module holds the names of its flagged ones."""
    wanted = set(names)
    for name, parameter in model.named_parameters():
        if name in wanted:
            setattr(parameter, INITIALISED_FLAG, True)
    for name, _, module in _named_buffers(model):
        if name in wanted:
            setattr(module, INITIALISED_BUFFERS, {*getattr(module, INITIALISED_BUFFERS, ()), name.rsplit(".", 1)[-1]})


def _named_buffers(model: nn.Module) -> "list[tuple[str, torch.Tensor, nn.Module]]":
    """Every buffer of `model`: its full name, the tensor and the module that holds it."""
    return [(f"{module_name}.{name}" if module_name else name, buffer, module)
            for module_name, module in model.named_modules()
            for name, buffer in module.named_buffers(recurse=False) if buffer is not None]
