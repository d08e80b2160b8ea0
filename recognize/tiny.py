"""Tiny, randomly initialised Hugging Face models built from configs and saved as ordinary
model folders, for the offline demo and the tests: they load through the same
`from_pretrained` path as any model a user names."""

from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer

SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def write_tiny_bert(folder: "str | Path", words: list[str], hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Save a BERT of `layers` x `hidden` with a WordPiece vocabulary of `words` to `folder`."""
    folder = Path(folder)
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *dict.fromkeys(w.lower() for w in words)])}
    BertTokenizer(vocab=vocab).save_pretrained(folder)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=hidden * 2, max_position_embeddings=256)
    BertModel(config).save_pretrained(folder)
    return folder
