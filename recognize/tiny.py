"""Tiny, randomly initialised Hugging Face models built from configs and saved as ordinary
model folders, for the offline demo and the tests: they load through the same
`from_pretrained` path as any model a user names."""

import json
from pathlib import Path

import torch
from transformers import (BertConfig, BertModel, BertTokenizer, VideoMAEConfig, VideoMAEModel, VivitConfig, VivitModel,
                          Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model, WhisperConfig, WhisperFeatureExtractor,
                          WhisperModel)

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


def write_tiny_wav2vec2(folder: "str | Path", hidden: int = 32, seed: int = 0) -> Path:
    """Save a 2-layer Wav2Vec2 with short convolution strides (80 samples per frame) and
    its 16 kHz feature extractor to `folder`."""
    folder = Path(folder)
    torch.manual_seed(seed)
    config = Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2, intermediate_size=hidden * 2,
                            conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    Wav2Vec2Model(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


def write_tiny_whisper(folder: "str | Path", chunk_length: int = 30, hidden: int = 32, seed: int = 0) -> Path:
    """Save a Whisper of 2 encoder layers (and 1 decoder layer) over 80 mel bins and its feature
    extractor to `folder`: windows of `chunk_length` seconds (100 mel frames a second), and as
    many encoder positions as they have frames after the encoder's stride of 2."""
    folder = Path(folder)
    torch.manual_seed(seed)
    config = WhisperConfig(d_model=hidden, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=hidden * 2, decoder_ffn_dim=hidden * 2, num_mel_bins=80,
                           max_source_positions=chunk_length * 50, vocab_size=64, pad_token_id=0, bos_token_id=1,
                           eos_token_id=2, decoder_start_token_id=1)
    WhisperModel(config).save_pretrained(folder)
    WhisperFeatureExtractor(feature_size=80, chunk_length=chunk_length).save_pretrained(folder)
    return folder


def write_tiny_videomae(folder: "str | Path", hidden: int = 32, seed: int = 0) -> Path:
    """Save a 2-layer VideoMAE over 4 frames of 32x32 and its image processor config to `folder`."""
    folder = Path(folder)
    torch.manual_seed(seed)
    config = VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=hidden,
                            num_hidden_layers=2, num_attention_heads=2, intermediate_size=hidden * 2)
    VideoMAEModel(config).save_pretrained(folder)
    return write_video_processor(folder, "VideoMAEImageProcessor")


def write_tiny_vivit(folder: "str | Path", hidden: int = 32, seed: int = 0) -> Path:
    """Save a 2-layer ViViT over 4 frames of 32x32 (tubelets of 2x8x8) and its image
    processor config (ViViT's: scaled to [-1, 1] with `offset`) to `folder`."""
    folder = Path(folder)
    torch.manual_seed(seed)
    config = VivitConfig(image_size=32, num_frames=4, tubelet_size=[2, 8, 8], hidden_size=hidden, num_hidden_layers=2,
                         num_attention_heads=2, intermediate_size=hidden * 2)
    VivitModel(config).save_pretrained(folder)
    return write_video_processor(folder, "VivitImageProcessor", rescale_factor=1 / 127.5, offset=True)


def write_video_processor(folder: "str | Path", processor_type: str, **settings) -> Path:
    """Write `folder`'s preprocessor_config.json for 32x32 frames (short side resized to 32,
    centre crop 32x32, rescaled by 1/255 and normalised with mean = std = 0.5 unless
    `settings` say otherwise) of image processor class `processor_type`."""
    folder = Path(folder)
    processor = {"image_processor_type": processor_type, "size": {"shortest_edge": 32},
                 "crop_size": {"height": 32, "width": 32}, "do_center_crop": True, "do_normalize": True,
                 "do_rescale": True, "do_resize": True, "image_mean": [0.5] * 3, "image_std": [0.5] * 3,
                 "resample": 2, "rescale_factor": 1 / 255, **settings}
    (folder / "preprocessor_config.json").write_text(json.dumps(processor, indent=2))
    return folder
