"""Encoders: any Hugging Face backbone plus pooling, mapping one modality's batch to (B, D)."""

import itertools
from pathlib import Path

import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoModel, AutoTokenizer

from recognize.checkpoint import read_json
from recognize.errors import RecognizeError, load_failure
from recognize.model.attention import shape_free_attention

CLS_POOLED_TYPES: frozenset[str] = frozenset(
    {"bert", "roberta", "xlm-roberta", "mpnet", "deberta", "deberta-v2", "electra", "albert", "distilbert", "camembert"}
)
"""Model types pretrained with a sentence-level first token; `auto` pooling uses it for them."""


def load_backbone(model_id: str, trust_remote_code: bool = False, flag: str = "--text-model") -> nn.Module:
    """Load a Hugging Face backbone in float32 by id or local folder, from safetensors weights
    only (a pickled `pytorch_model.bin` can run code when loaded); of an encoder-decoder
    (Whisper), the encoder; without a decoder's key/value cache (GPT-2, Llama), which would
    hold every layer's keys and values of each batch for nothing. A failure names `flag`,
    the option that takes a local folder; so does a settings file of a local folder that is
    not a JSON object (`check_settings_files`), before transformers reads it."""
    folder = Path(model_id)
    if folder.is_dir():
        check_settings_files(folder, flag)
    if folder.is_dir() and not any(folder.glob("*.safetensors")) and any(folder.glob("*.bin")):
        raise RecognizeError(f"{flag} {model_id}: holds only pickled weights (*.bin), and only safetensors are loaded; "
                             "convert them once with transformers: from_pretrained(folder).save_pretrained(folder)")
    try:
        model = AutoModel.from_pretrained(model_id, dtype=torch.float32, trust_remote_code=trust_remote_code,
                                          use_safetensors=True)
    except (OSError, ValueError, SafetensorError) as error:
        raise RecognizeError(load_failure("model", model_id, error, flag)) from None
    if getattr(model.config, "use_cache", False):  # a decoder's key/value cache serves generation, not an encoder
        model.config.use_cache = False
    return model.get_encoder() if getattr(model.config, "is_encoder_decoder", False) else model


SETTINGS_FILES: tuple[str, ...] = (
    "config.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.json", "vocab.json",
    "preprocessor_config.json", "video_preprocessor_config.json", "processor_config.json")
"""The JSON files of a model folder that transformers reads as objects (a sentence-transformers
folder's modules.json is a list, and not read by transformers)."""


def check_settings_files(folder: Path, flag: str) -> None:
    """RecognizeError naming the file and `flag` for a settings file of a local model `folder`
    that is not valid JSON or not a JSON object (transformers fails on one with a traceback)."""
    for name in SETTINGS_FILES:
        path = folder / name
        if path.is_file() and not isinstance(settings := read_json(path), dict):
            kind = "an array" if isinstance(settings, list) else "a string" if isinstance(settings, str) else "null" \
                if settings is None else "a bare value"
            raise RecognizeError(f"{path}: holds {kind}, not the JSON object of settings transformers reads ({flag})")


def load_tokenizer(model_id: str, trust_remote_code: bool = False):
    """Load the tokenizer that belongs to `model_id`, with the same errors as `load_backbone`;
    one with no vocabulary beyond its special tokens (what transformers builds for a folder
    without tokenizer files, which would read every word as unknown) is an error."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise RecognizeError(load_failure("tokenizer", model_id, error, "--text-model")) from None
    if len(tokenizer) <= len(set(tokenizer.all_special_tokens)):
        raise RecognizeError(f"--text-model {model_id}: its tokenizer has no vocabulary, only special tokens "
                             "(no tokenizer.json, vocab.txt or sentencepiece model in the folder?)")
    return tokenizer


POSITION_OFFSET_TYPES: frozenset[str] = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet", "longformer"})
"""Text model types whose position ids start after the padding id (at pad_token_id + 1)."""


def check_text_fits(model_id: str, tokenizer, model_config, max_length: int) -> None:
    """Fail before training, not at the first long batch, when the tokenizer's ids or
    `--max-length` go beyond what the text model's embeddings hold, or `--max-length`
    leaves no room for the utterance beside the tokenizer's special tokens."""
    vocabulary = getattr(model_config, "vocab_size", None)
    if vocabulary and len(tokenizer) > vocabulary:
        raise RecognizeError(f"--text-model {model_id}: its tokenizer has {len(tokenizer)} tokens and the model's "
                             f"embeddings {vocabulary}: the two do not belong together")
    special = tokenizer.num_special_tokens_to_add()
    if max_length <= special:  # the tokenizer would keep only its special tokens, or ignore the budget below them
        raise RecognizeError(f"--max-length {max_length}: leaves no token of the utterance ({model_id}'s tokenizer "
                             f"adds {special} special tokens); at least {special + 1}")
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions and getattr(model_config, "position_biased_input", True):  # DeBERTa's relative positions have no limit here
        if model_config.model_type in POSITION_OFFSET_TYPES:
            positions -= (model_config.pad_token_id or 0) + 1
        if max_length > positions:
            raise RecognizeError(f"--max-length {max_length}: {model_id} embeds at most {positions} positions")


def attends_causally(backbone: nn.Module) -> bool:
    """Whether a text backbone's first position sees only the first token: its output there
    stays the same when the last of four tokens changes. So it is for a decoder-only model
    (GPT-2, Llama, Qwen2, Mamba) and a BERT configured as a decoder (`is_decoder`); not for a
    bidirectional encoder, including those transformers also offers as causal LMs
    (BertGeneration's encoder, XLNet) and the encoder `load_backbone` keeps of an
    encoder-decoder (Pegasus, Marian, Blenderbot, PLBart, ProphetNet)."""
    config = backbone.config.get_text_config()
    special = set()
    for key, value in config.to_dict().items():
        if key.endswith("_token_id") and value is not None:
            special.update(value if isinstance(value, list) else [value])
    ids = list(itertools.islice((i for i in range(config.vocab_size) if i not in special), 5))
    inputs = torch.tensor([ids[:4], ids[:3] + ids[4:]])
    training = backbone.training
    backbone.eval()  # no dropout between the two rows
    with torch.no_grad():
        first = backbone(input_ids=inputs).last_hidden_state[:, 0]
    backbone.train(training)
    return torch.allclose(first[0], first[1], rtol=1e-4, atol=1e-5)


def resolve_pooling(model_id: str, backbone: nn.Module, requested: str, new_run: bool = True) -> str:
    """The pooling for a text model: `pooling_for` its id, model type and `requested`. CLS
    pooling of a backbone that attends causally (`attends_causally`) is an error for a
    `new_run`: its first token sees no other (a checkpoint trained that way before this check
    still loads)."""
    model_type = backbone.config.model_type
    pooling = pooling_for(model_id, model_type, requested)
    if new_run and pooling == "cls" and attends_causally(backbone):
        raise RecognizeError(f"--pooling cls: {model_id} is a decoder-only model ({model_type}), whose first token sees "
                             "none after it; pass --pooling mean or --pooling last")
    return pooling


def pooling_for(model_id: str, model_type: str, requested: str) -> str:
    """`requested` unless it is "auto"; then the model's own (a sentence-transformers folder's
    1_Pooling/config.json: mean, CLS or last token; "mean" for a sentence-transformers id),
    else "cls" for BERT-like model types and "mean" for others."""
    if requested != "auto":
        return requested
    pooling_config = Path(model_id) / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        settings = read_json(pooling_config)
        if not isinstance(settings, dict):
            raise RecognizeError(f"{pooling_config}: not a sentence-transformers pooling config (a JSON object of "
                                 "pooling_mode_* settings); pass --pooling mean or --pooling cls")
        if settings.get("pooling_mode_mean_tokens"):
            return "mean"
        if settings.get("pooling_mode_cls_token"):
            return "cls"
        if settings.get("pooling_mode_lasttoken"):
            return "last"
        other = sorted(key[len("pooling_mode_"):] for key, value in settings.items() if key.startswith("pooling_mode_") and value)
        if other:
            raise RecognizeError(f"--pooling auto: {model_id} pools by {', '.join(other)} ({pooling_config}), which this "
                                 "toolkit does not offer; pass --pooling mean, cls or last")
    if model_id.startswith("sentence-transformers/"):
        return "mean"
    return "cls" if model_type in CLS_POOLED_TYPES else "mean"


def drop_pooler(backbone: nn.Module) -> nn.Module:
    """Remove a backbone's pooler head (BERT, ViViT): the encoders pool on their own, and an
    unused head would be trained, stored and synchronised (DDP rejects unused parameters)."""
    if getattr(backbone, "pooler", None) is not None:
        backbone.pooler = None
    return backbone


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `hidden` (B, L, D) over the positions where `mask` (B, L) is 1."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


TEXT_POOLINGS: tuple[str, ...] = ("cls", "mean", "last")
"""What a text encoder pools: the first token, the mean of the real tokens, or the last real token."""


class TextEncoder(nn.Module):
    """A Hugging Face text backbone with CLS, masked-mean or last-token pooling: tokens -> (B, hidden)."""

    def __init__(self, backbone: nn.Module, pooling: str) -> None:
        super().__init__()
        if pooling not in TEXT_POOLINGS:
            raise RecognizeError(f"--pooling: unknown value '{pooling}'; valid: {', '.join(TEXT_POOLINGS)}")
        self.backbone = drop_pooler(backbone)
        self.pooling = pooling
        self.output_size: int = backbone.config.hidden_size

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled vectors (B, hidden) of a token batch padded on the right (as `pad_text` pads):
        the first token, the mean over real tokens, or the last real token (what a decoder-only
        model's sequence-classification head reads)."""
        with shape_free_attention():
            hidden = self.backbone(**inputs).last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "last":  # a row without tokens (an empty utterance, no special tokens) pools to zero, as in mean
            lengths = inputs["attention_mask"].sum(-1)
            last = hidden[torch.arange(len(hidden), device=hidden.device), (lengths - 1).clamp(min=0)]
            return last * (lengths > 0).unsqueeze(-1).to(hidden.dtype)
        return masked_mean(hidden, inputs["attention_mask"])


PADDING_HEARD_TYPES: frozenset[str] = frozenset({"data2vec-audio", "wav2vec2-conformer"})
"""Speech model types that take a mask yet whose output for a clip depends on the padding
beside it: data2vec-audio's five stacked positional convolutions, each layer-normalised,
carry the padded frames' values into the real ones (a 0.2 s clip's logits moved by up to
0.23 between evaluation batches of 2 and 4 clips in a tiny model), and so do the depthwise
convolutions of Wav2Vec2-Conformer's convolution modules (up to 0.12 in a tiny model)."""


class AudioEncoder(nn.Module):
    """A Hugging Face speech encoder (Wav2Vec2, HuBERT, WavLM, data2vec-audio, Whisper's
    encoder) with mean pooling over the frames of real (unpadded) audio: waveform -> (B, hidden)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.output_size: int = backbone.config.hidden_size
        # models with group-norm feature extractors (wav2vec2-base) must not see a mask: they
        # were trained on zero-padded audio (their feature extractor's documentation says so)
        self.pass_mask = getattr(backbone.config, "feat_extract_norm", "layer") == "layer"
        # whether a clip's vector is the same whatever the padding beside it (else evaluation,
        # the feature cache and a frozen training batch encode each clip alone)
        self.padding_free = self.pass_mask and backbone.config.model_type not in PADDING_HEARD_TYPES

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled vectors of a batch of waveforms (or Whisper's log-mel frames). A model that
        hears the padding beside a clip (one taking no mask, data2vec-audio, Wav2Vec2-Conformer) is, where its
        weights do not train (frozen mode without the feature cache), run on each clip alone,
        as the cache and evaluation run it, so that its vector never depends on the clips
        batched with it."""
        if not self.padding_free and "input_values" in inputs and len(inputs["input_values"]) > 1 and not self._trains():
            lengths = inputs["attention_mask"].sum(-1).tolist()
            return torch.cat([self._pooled({name: value[row:row + 1, :length] for name, value in inputs.items()})
                              for row, length in enumerate(lengths)])
        return self._pooled(inputs)

    def _trains(self) -> bool:
        """Whether any of the backbone's weights train (full tuning, LoRA adapters)."""
        return any(parameter.requires_grad for parameter in self.backbone.parameters())

    def _pooled(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The backbone's frames over the batch, mean-pooled over each clip's real audio."""
        mask = inputs["attention_mask"]
        with shape_free_attention():
            if "input_features" in inputs:  # Whisper: log-mel frames, halved by the encoder's strided conv
                hidden = self.backbone(input_features=inputs["input_features"]).last_hidden_state
                frames = mask[:, ::2][:, : hidden.shape[1]]
            else:
                hidden = self.backbone(inputs["input_values"], attention_mask=mask if self.pass_mask else None).last_hidden_state
                lengths = self.backbone._get_feat_extract_output_lengths(mask.sum(-1))
                frames = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]).long()
        return masked_mean(hidden, frames)


VIDEO_CLS_TYPES: frozenset[str] = frozenset({"vivit", "timesformer"})
"""Video model types whose first token summarises the clip; others (VideoMAE) are mean-pooled."""


class VideoEncoder(nn.Module):
    """A Hugging Face video transformer (ViViT, VideoMAE, TimeSformer): frames -> (B, hidden),
    pooled by the model's own convention (CLS token for ViViT and TimeSformer, token mean for VideoMAE)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = drop_pooler(backbone)
        self.output_size: int = backbone.config.hidden_size
        self.pooling = "cls" if backbone.config.model_type in VIDEO_CLS_TYPES else "mean"

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled vectors (B, hidden) of a batch of sampled frames, by the model's own convention."""
        with shape_free_attention():
            hidden = self.backbone(pixel_values=inputs["pixel_values"]).last_hidden_state
        return hidden[:, 0] if self.pooling == "cls" else hidden.mean(dim=1)
