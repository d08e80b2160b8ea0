"""Tiny text models of the architectures researchers use, each saved with a tokenizer of its
own kind (WordPiece, byte-level BPE or unigram, trained on the synthetic data's words), so
that they load through `from_pretrained` as a downloaded model would."""

import json
from pathlib import Path
from typing import Callable

import torch
import transformers as hf
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from recognize.dataset.synthetic import vocabulary

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
WORDPIECE = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ROBERTA = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")


def _words() -> list[str]:
    """The synthetic data's words, as written and lower-cased."""
    return sorted({*vocabulary(), *(w.lower() for w in vocabulary())})


def wordpiece(special: tuple[str, ...]) -> dict[str, int]:
    """A whole-word WordPiece vocabulary: `special`, then the words."""
    return {token: i for i, token in enumerate(dict.fromkeys([*special, *_words()]))}


def byte_bpe(special: tuple[str, ...]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(vocabulary, merges) of a byte-level BPE trained on the words and a few phrases."""
    words = _words()
    corpus = [" ".join(words[i:i + 6]) for i in range(0, len(words), 3)] * 3 + words
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=list(special), show_progress=False,
                                                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    model = json.loads(tokenizer.to_str())["model"]
    return model["vocab"], [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]


def unigram(special: tuple[str, ...]) -> list[tuple[str, float]]:
    """A sentencepiece-style unigram vocabulary: `special`, each word with and without "▁", single characters."""
    pieces = dict.fromkeys(special, 0.0)
    for word in _words():
        pieces.setdefault(f"▁{word}", -5.0)
        pieces.setdefault(word, -6.0)
    for char in sorted({"▁", *"".join(_words())}):
        pieces.setdefault(char, -10.0)
    return list(pieces.items())


def modernbert_tokenizer() -> hf.PreTrainedTokenizerFast:
    """ModernBERT's kind: a byte-level BPE wrapped as a plain fast tokenizer with [CLS] ... [SEP]."""
    vocab, merges = byte_bpe(("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"))
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    return hf.PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                      pad_token="[PAD]", mask_token="[MASK]", model_input_names=["input_ids", "attention_mask"])


def _bpe_pair(tokenizer_class, model_class, config_class, special: tuple[str, ...], **settings) -> Callable[[], tuple]:
    """A writer for a byte-level BPE architecture."""
    def make() -> tuple:
        vocab, merges = byte_bpe(special)
        return tokenizer_class(vocab=vocab, merges=merges), model_class(config_class(vocab_size=len(vocab), **settings))
    return make


def _wordpiece_pair(tokenizer_class, model_class, config_class, special: tuple[str, ...] = WORDPIECE, **settings) -> Callable[[], tuple]:
    """A writer for a WordPiece architecture."""
    def make() -> tuple:
        vocab = wordpiece(special)
        return tokenizer_class(vocab=vocab), model_class(config_class(vocab_size=len(vocab), **settings))
    return make


def _unigram_pair(tokenizer_class, model_class, config_class, special: tuple[str, ...], **settings) -> Callable[[], tuple]:
    """A writer for a sentencepiece (unigram) architecture."""
    def make() -> tuple:
        pieces = unigram(special)
        return tokenizer_class(vocab=pieces), model_class(config_class(vocab_size=len(pieces), **settings))
    return make


DISTILBERT = dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64)
DECODER = dict(num_key_value_heads=1, max_position_embeddings=256, **SMALL)
ARCHITECTURES: dict[str, Callable[[], tuple]] = {
    "bert": _wordpiece_pair(hf.BertTokenizer, hf.BertModel, hf.BertConfig, **SMALL),
    "roberta": _bpe_pair(hf.RobertaTokenizer, hf.RobertaModel, hf.RobertaConfig, ROBERTA, pad_token_id=1,
                         max_position_embeddings=130, **SMALL),
    "xlm-roberta": _unigram_pair(hf.XLMRobertaTokenizer, hf.XLMRobertaModel, hf.XLMRobertaConfig, ROBERTA, pad_token_id=1,
                                 max_position_embeddings=130, **SMALL),
    "mpnet": _wordpiece_pair(hf.MPNetTokenizer, hf.MPNetModel, hf.MPNetConfig, ("<pad>", "[UNK]", "<s>", "</s>", "<mask>"),
                             pad_token_id=0, bos_token_id=2, eos_token_id=3, **SMALL),
    "distilbert": _wordpiece_pair(hf.DistilBertTokenizer, hf.DistilBertModel, hf.DistilBertConfig, **DISTILBERT),
    "deberta-v2": _unigram_pair(hf.DebertaV2Tokenizer, hf.DebertaV2Model, hf.DebertaV2Config, WORDPIECE, relative_attention=True,
                                pos_att_type=["p2c", "c2p"], position_biased_input=False, position_buckets=16, **SMALL),
    "albert": _unigram_pair(hf.AlbertTokenizer, hf.AlbertModel, hf.AlbertConfig, ("<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"),
                            embedding_size=16, **SMALL),
    "electra": _wordpiece_pair(hf.ElectraTokenizer, hf.ElectraModel, hf.ElectraConfig, embedding_size=16, **SMALL),
    "modernbert": lambda: (modernbert_tokenizer(), hf.ModernBertModel(hf.ModernBertConfig(
        vocab_size=300, pad_token_id=3, cls_token_id=1, sep_token_id=2, bos_token_id=None, eos_token_id=None,
        global_attn_every_n_layers=2, local_attention=16, max_position_embeddings=256, **SMALL))),
    "t5": lambda: _t5_in_bfloat16(),
    "gpt2": _bpe_pair(hf.GPT2Tokenizer, hf.GPT2Model, hf.GPT2Config, ("<|endoftext|>",), n_embd=32, n_layer=2, n_head=2,
                      n_positions=256, bos_token_id=0, eos_token_id=0),
    "llama": _bpe_pair(hf.LlamaTokenizer, hf.LlamaModel, hf.LlamaConfig, ("<unk>", "<s>", "</s>"), bos_token_id=1,
                       eos_token_id=2, **DECODER),
    "qwen2": _bpe_pair(hf.Qwen2Tokenizer, hf.Qwen2Model, hf.Qwen2Config, ("<|endoftext|>",), bos_token_id=0, eos_token_id=0,
                       **DECODER),
}
"""Architecture -> a function making its (tokenizer, randomly initialised model)."""


def _t5_in_bfloat16() -> tuple:
    """T5 (an encoder-decoder: the toolkit takes its encoder), saved in bfloat16 as many checkpoints are."""
    tokenizer = hf.T5Tokenizer(vocab=unigram(("<pad>", "</s>", "<unk>")))
    config = hf.T5Config(vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2,
                         decoder_start_token_id=0)
    return tokenizer, hf.T5Model(config).to(torch.bfloat16)


def write_text_model(folder: "str | Path", name: str) -> Path:
    """Save the tiny model of architecture `name` (ARCHITECTURES) and its tokenizer to `folder`."""
    torch.manual_seed(0)
    tokenizer, model = ARCHITECTURES[name]()
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return Path(folder)
