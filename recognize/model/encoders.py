"""Encoders: any Hugging Face backbone plus pooling, mapping one modality's batch to (B, D)."""

import json
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from recognize.errors import RecognizeError

CLS_POOLED_TYPES: frozenset[str] = frozenset(
    {"bert", "roberta", "xlm-roberta", "mpnet", "deberta", "deberta-v2", "electra", "albert", "distilbert", "camembert"}
)
"""Model types pretrained with a sentence-level first token; `auto` pooling uses it for them."""


def load_backbone(model_id: str, trust_remote_code: bool = False) -> nn.Module:
    """Load a Hugging Face backbone in float32 by id or local folder, offline-friendly errors."""
    try:
        return AutoModel.from_pretrained(model_id, dtype=torch.float32, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise RecognizeError(_load_message(model_id, error)) from None


def load_tokenizer(model_id: str, trust_remote_code: bool = False):
    """Load the tokenizer that belongs to `model_id`, with the same errors as `load_backbone`."""
    try:
        return AutoTokenizer.from_pretrained(model_id, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise RecognizeError(_load_message(model_id, error)) from None


def resolve_pooling(model_id: str, model_type: str, requested: str) -> str:
    """The pooling for a text model: `requested` unless it is "auto"; then the model's own
    (a sentence-transformers folder's 1_Pooling/config.json, or "mean" for a
    sentence-transformers id), else "cls" for BERT-like model types and "mean" for others."""
    if requested != "auto":
        return requested
    pooling_config = Path(model_id) / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        settings = json.loads(pooling_config.read_text(encoding="utf-8"))
        if settings.get("pooling_mode_mean_tokens"):
            return "mean"
        if settings.get("pooling_mode_cls_token"):
            return "cls"
    if model_id.startswith("sentence-transformers/"):
        return "mean"
    return "cls" if model_type in CLS_POOLED_TYPES else "mean"


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` (B, L, D) over the positions where `mask` (B, L) is 1."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class TextEncoder(nn.Module):
    """A Hugging Face text backbone with CLS or masked-mean pooling: tokens -> (B, hidden)."""

    def __init__(self, backbone: nn.Module, pooling: str) -> None:
        super().__init__()
        if pooling not in ("cls", "mean"):
            raise RecognizeError(f"--pooling: unknown value '{pooling}'; valid: cls, mean")
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None  # BERT-style pooler heads are unused here: no dead weights to train, store or sync
        self.backbone = backbone
        self.pooling = pooling
        self.output_size: int = backbone.config.hidden_size

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        hidden = self.backbone(**inputs).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        return masked_mean(hidden, inputs["attention_mask"])


def _load_message(model_id: str, error: Exception) -> str:
    """One line on why `model_id` did not load, and what works offline."""
    if Path(model_id).exists():
        return f"cannot load model from folder '{model_id}': {str(error).splitlines()[0]}"
    return (
        f"cannot load model '{model_id}': it is not a local folder and not in the Hugging Face cache "
        f"(offline or unreachable hub); pass a local folder path, e.g. --text-model /path/to/{Path(model_id).name}"
    )
