"""Text, speech and video encoders across the architectures the toolkit supports, built tiny from
configs and loaded through `from_pretrained`: the pooled vector equals a direct masked mean
(or the CLS token) of the backbone's output, padding does not leak into it where the model
takes a mask, LoRA finds each architecture's query/value projections, and no backbone's
attention may use cuDNN's kernel (text encoders too)."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as hf
from transformers import (Data2VecAudioConfig, Data2VecAudioModel, HubertConfig, HubertModel, TimesformerConfig,
                          TimesformerModel, UniSpeechSatConfig, UniSpeechSatModel, WavLMConfig, WavLMModel, Wav2Vec2Config,
                          Wav2Vec2ConformerConfig, Wav2Vec2ConformerModel, Wav2Vec2FeatureExtractor, Wav2Vec2Model,
                          WhisperConfig)

from recognize import ExperimentConfig
from recognize.builder import build_model, eval_loader, load_matching
from recognize.dataset.audio import AudioFeatures, minimum_samples
from recognize.dataset.loader import MediaSource, UtteranceDataset
from recognize.dataset.text import pad_text
from recognize.dataset.video import VideoFrames
from recognize.errors import RecognizeError
from recognize.engine import check_finite, predict_loader
from recognize.model.classifier import EmotionModel
from recognize.model.encoders import (AudioEncoder, TextEncoder, VideoEncoder, attends_causally, load_backbone, load_tokenizer,
                                      pooling_for, resolve_pooling)
from recognize.model.modes import apply_mode, checkpoint_state, running_statistics
from recognize.tiny import write_tiny_bert, write_tiny_videomae, write_tiny_vivit, write_tiny_whisper, write_video_processor

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
CONV = dict(conv_dim=(32, 32, 32), conv_stride=(5, 4, 4), conv_kernel=(10, 8, 8), num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2)
SPEECH = {  # name -> (model class, config, LoRA's projection names)
    "wav2vec2-group-norm": (Wav2Vec2Model, Wav2Vec2Config(**SMALL, **CONV), {"q_proj", "v_proj"}),
    "wav2vec2-layer-norm": (Wav2Vec2Model, Wav2Vec2Config(**SMALL, **CONV, feat_extract_norm="layer",
                                                          do_stable_layer_norm=True), {"q_proj", "v_proj"}),
    "hubert": (HubertModel, HubertConfig(**SMALL, **CONV), {"q_proj", "v_proj"}),
    "wavlm": (WavLMModel, WavLMConfig(**SMALL, **CONV, feat_extract_norm="layer", num_buckets=32, max_bucket_distance=64),
              {"q_proj", "v_proj"}),
    "data2vec-audio": (Data2VecAudioModel, Data2VecAudioConfig(**SMALL, **CONV), {"q_proj", "v_proj"}),
    "unispeech-sat": (UniSpeechSatModel, UniSpeechSatConfig(**SMALL, **CONV), {"q_proj", "v_proj"}),
    "wav2vec2-conformer": (Wav2Vec2ConformerModel, Wav2Vec2ConformerConfig(**SMALL, **CONV, feat_extract_norm="layer"),
                           {"linear_q", "linear_v"}),
}
RATE = 16000


def save_speech_model(folder: Path, name: str) -> Path:
    """A tiny speech model of kind `name` (SPEECH, or "whisper") with its feature extractor."""
    torch.manual_seed(0)
    if name == "whisper":
        return write_tiny_whisper(folder)
    model_class, config, _ = SPEECH[name]
    model_class(config).save_pretrained(folder)
    Wav2Vec2FeatureExtractor(sampling_rate=RATE, do_normalize=True, return_attention_mask=True).save_pretrained(folder)
    return folder


def conv_frames(samples: int) -> int:
    """Frames the CONV feature encoder makes of `samples`: floor((L - kernel) / stride) + 1 per layer."""
    for kernel, stride in zip(CONV["conv_kernel"], CONV["conv_stride"]):
        samples = (samples - kernel) // stride + 1
    return samples


def waves() -> list[np.ndarray]:
    """A 1.0 s and a 0.5 s tone, of different pitch."""
    t = np.arange(RATE) / RATE
    return [np.sin(2 * np.pi * 300 * t).astype(np.float32), 0.5 * np.sin(2 * np.pi * 500 * t[:RATE // 2]).astype(np.float32)]


@pytest.mark.parametrize("name", [*SPEECH, "whisper"])
def test_speech_pooling_is_the_mean_over_the_frames_of_real_audio(tmp_path, name):
    folder = save_speech_model(tmp_path / name, name)
    encoder = AudioEncoder(load_backbone(str(folder))).eval()
    inputs = AudioFeatures(str(folder))(waves())

    with torch.no_grad():
        pooled = encoder(inputs)
        if name == "whisper":
            hidden = encoder.backbone(input_features=inputs["input_features"]).last_hidden_state
            real_frames = [50, 25]  # 100 mel frames a second, halved by the encoder's strided convolution
        else:
            mask = inputs["attention_mask"] if encoder.pass_mask else None
            hidden = encoder.backbone(inputs["input_values"], attention_mask=mask).last_hidden_state
            real_frames = [conv_frames(RATE), conv_frames(RATE // 2)]

    assert pooled.shape == (2, encoder.output_size)
    for row, frames in enumerate(real_frames):
        assert torch.allclose(pooled[row], hidden[row, :frames].mean(0), atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_text_pooling_is_the_first_token_or_the_mean_over_each_rows_own_tokens(tmp_path, pooling):
    words = ["oh", "my", "god", "we", "were", "on", "a", "break", "okay"]
    folder = write_tiny_bert(tmp_path / "bert", words)
    tokenizer = load_tokenizer(str(folder))
    encoder = TextEncoder(load_backbone(str(folder)), pooling).eval()
    rows = [tokenizer(text)["input_ids"] for text in ("we were on a break oh my god", "okay")]  # 10 and 3 tokens
    batch = pad_text([{"input_ids": ids, "token_type_ids": [0] * len(ids)} for ids in rows], tokenizer.pad_token_id)

    with torch.no_grad():
        pooled = encoder(batch)
        for row, ids in enumerate(rows):  # each row alone, unpadded: its hidden states, averaged by hand
            hidden = encoder.backbone(input_ids=torch.tensor([ids])).last_hidden_state[0].numpy()
            expected = hidden[0] if pooling == "cls" else hidden.sum(0) / len(ids)
            assert np.allclose(pooled[row].numpy(), expected, atol=1e-5)
    assert batch["attention_mask"].sum(1).tolist() == [len(ids) for ids in rows]


PADDING_FREE = ["wav2vec2-layer-norm", "wavlm", "whisper"]
"""Speech models whose output for a clip does not depend on the padding beside it (data2vec-audio's
positional convolutions see padded frames; group-norm models take no mask)."""


@pytest.mark.parametrize("name", PADDING_FREE)
def test_padding_does_not_change_the_pooled_vector_of_models_that_take_a_mask(tmp_path, name):
    folder = save_speech_model(tmp_path / name, name)
    encoder = AudioEncoder(load_backbone(str(folder))).eval()
    features = AudioFeatures(str(folder))

    with torch.no_grad():
        batched = encoder(features(waves()))[1]
        alone = encoder(features(waves()[1:]))[0]

    assert torch.allclose(batched, alone, atol=1e-4)


@pytest.mark.parametrize("name", [*SPEECH, "whisper"])
def test_a_clips_vector_does_not_depend_on_the_clips_evaluated_or_frozen_beside_it(tmp_path, name):
    """Evaluation at any --batch-size, and a frozen encoder's training batch, give each clip
    the vector it has alone: models that hear padding (no mask, or data2vec-audio's stacked
    positional convolutions) are run one clip at a time there."""
    folder = save_speech_model(tmp_path / name, name)
    t = np.arange(RATE) / RATE
    clips = {Path(f"{n}.flac"): np.sin(2 * np.pi * pitch * t[:n]).astype(np.float32)
             for n, pitch in ((RATE, 300), (RATE // 2, 500), (RATE // 5, 700))}
    logits = []
    for batch_size in (1, 2):  # evaluation batches of 2 and 4 rows
        config = ExperimentConfig(modal="A", audio_model=str(folder), mode="full", batch_size=batch_size)
        torch.manual_seed(0)
        built = build_model(config)
        dataset = UtteranceDataset(np.zeros(len(clips), dtype=np.int64), media={"A": MediaSource(list(clips), clips.get)},
                                   lengths=[len(wave) for wave in clips.values()])
        logits.append(predict_loader(built.model, eval_loader(config, built, dataset), "no").logits)
    assert np.allclose(logits[0], logits[1], atol=1e-5)

    encoder = AudioEncoder(load_backbone(str(folder))).eval().requires_grad_(False)
    features = AudioFeatures(str(folder))
    with torch.no_grad():
        batched = encoder(features(list(clips.values())))
        alone = torch.cat([encoder(features([wave])) for wave in clips.values()])
    assert torch.allclose(batched, alone, atol=1e-5)


def test_the_shortest_clip_is_the_receptive_field_of_the_feature_encoder():
    assert minimum_samples(Wav2Vec2Config()) == 400  # wav2vec2-base: 25 ms at 16 kHz
    assert minimum_samples(WhisperConfig()) == 1  # Whisper pads every clip to 30 s


@pytest.mark.parametrize("name", [*SPEECH, "whisper"])
def test_a_clip_shorter_than_the_receptive_field_is_extended_with_silence_not_a_crash(tmp_path, name):
    folder = save_speech_model(tmp_path / name, name)
    backbone = load_backbone(str(folder))
    encoder = AudioEncoder(backbone).eval()
    shortest = minimum_samples(backbone.config)
    if name != "whisper":
        assert shortest == 185  # CONV backwards from one frame: (1 - 1) * 4 + 8 = 8, 7 * 4 + 8 = 36, 35 * 5 + 10 = 185
        assert backbone._get_feat_extract_output_lengths(torch.tensor([shortest - 1, shortest])).tolist() == [0, 1]
    features = AudioFeatures(str(folder), min_samples=shortest)
    click = np.full(50, 0.1, dtype=np.float32)  # 3 ms: fewer samples than the first convolution's kernel

    with torch.no_grad():
        alone = encoder(features([click]))
        batched = encoder(features([waves()[0], click]))

    assert torch.isfinite(alone).all() and torch.isfinite(batched).all()
    if name in PADDING_FREE:
        assert torch.allclose(alone[0], batched[1], atol=1e-4)


@pytest.mark.parametrize("name", [*SPEECH, "whisper"])
def test_lora_finds_the_query_and_value_projections_of_every_speech_encoder(tmp_path, name):
    folder = save_speech_model(tmp_path / name, name)
    model = EmotionModel({"A": AudioEncoder(load_backbone(str(folder)))}, num_labels=7, dropout=0.1)

    apply_mode(model, "lora", r=4, alpha=8, dropout=0.0)

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable if ".lora_" in n}
    assert adapted == (SPEECH[name][2] if name in SPEECH else {"q_proj", "v_proj"})
    assert trainable == {n for n in trainable if ".lora_" in n or n.startswith("head.")}


def test_lora_prints_no_deprecation_warning_of_the_libraries(tiny_bert):
    model = EmotionModel({"T": TextEncoder(load_backbone(str(tiny_bert)), "cls")}, num_labels=7, dropout=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_mode(model, "lora", r=4, alpha=8, dropout=0.0)
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == []


def save_timesformer(folder: Path) -> Path:
    """A tiny TimeSformer over 4 frames of 32x32, with a VideoMAE-style processor config."""
    torch.manual_seed(0)
    TimesformerModel(TimesformerConfig(image_size=32, patch_size=8, num_frames=4, **SMALL)).save_pretrained(folder)
    return write_video_processor(folder, "VideoMAEImageProcessor", image_mean=[0.45] * 3, image_std=[0.225] * 3)


VIDEO = {  # name -> (writer, pooling, LoRA's projection names)
    "videomae": (write_tiny_videomae, "mean", {"query", "value"}),
    "vivit": (write_tiny_vivit, "cls", {"q_proj", "v_proj"}),
    "timesformer": (save_timesformer, "cls", {"qkv"}),
}


@pytest.mark.parametrize("name", VIDEO)
def test_video_pooling_follows_the_models_convention(tmp_path, name):
    writer, pooling, _ = VIDEO[name]
    folder = writer(tmp_path / name)
    encoder = VideoEncoder(load_backbone(str(folder))).eval()
    frames = VideoFrames(str(folder))
    clips = torch.stack([frames(np.random.default_rng(seed).integers(0, 256, (4, 40, 48, 3), dtype=np.uint8)) for seed in (0, 1)])

    with torch.no_grad():
        pooled = encoder({"pixel_values": clips})
        hidden = encoder.backbone(pixel_values=clips).last_hidden_state

    assert encoder.pooling == pooling
    assert torch.equal(pooled, hidden[:, 0] if pooling == "cls" else hidden.mean(1))
    assert not hasattr(encoder.backbone, "pooler") or encoder.backbone.pooler is None


@pytest.mark.parametrize("name", VIDEO)
def test_lora_finds_the_attention_projections_of_every_video_encoder(tmp_path, name):
    writer, _, projections = VIDEO[name]
    model = EmotionModel({"V": VideoEncoder(load_backbone(str(writer(tmp_path / name))))}, num_labels=3, dropout=0.1)

    apply_mode(model, "lora", r=4, alpha=8, dropout=0.0)

    adapted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n, p in model.named_parameters() if p.requires_grad and ".lora_" in n}
    assert adapted == projections


def attention_call_flags(monkeypatch) -> list[tuple[bool, bool, bool, bool]]:
    """Record, for every `scaled_dot_product_attention` call from now on, which of cuDNN,
    flash, memory-efficient and math attention PyTorch may pick for it."""
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def recording(*args, **kwargs):
        backends = torch.backends.cuda
        calls.append((backends.cudnn_sdp_enabled(), backends.flash_sdp_enabled(), backends.mem_efficient_sdp_enabled(),
                      backends.math_sdp_enabled()))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", recording)
    return calls


@pytest.mark.parametrize("modality", ["text", "audio", "video"])
def test_backbones_attend_without_cudnn_which_builds_a_plan_per_batch_shape(tmp_path, monkeypatch, modality):
    if modality == "text":
        folder = write_tiny_bert(tmp_path / "bert", ["calm", "angry"])
        encoder = TextEncoder(load_backbone(str(folder)), "mean")
        inputs = dict(load_tokenizer(str(folder))(["calm", "angry angry"], padding=True, return_tensors="pt"))
    elif modality == "audio":
        encoder = AudioEncoder(load_backbone(str(save_speech_model(tmp_path / "w2v", "wav2vec2-layer-norm"))))
        inputs = AudioFeatures(str(tmp_path / "w2v"))(waves())
    else:
        folder = write_tiny_vivit(tmp_path / "vivit")
        encoder = VideoEncoder(load_backbone(str(folder)))
        inputs = {"pixel_values": torch.stack([VideoFrames(str(folder))(np.zeros((4, 40, 48, 3), dtype=np.uint8))])}
    calls = attention_call_flags(monkeypatch)

    encoder(inputs).sum().backward()

    assert len(calls) == encoder.backbone.config.num_hidden_layers  # every layer's attention went through SDPA
    assert set(calls) == {(False, True, True, True)}
    assert torch.backends.cuda.cudnn_sdp_enabled()  # restored afterwards


@pytest.mark.parametrize("pooling, expected", [
    ({"pooling_mode_mean_tokens": True}, "mean"),
    ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, "cls"),
    ({"pooling_mode_lasttoken": True, "pooling_mode_mean_tokens": False}, "last"),  # decoder-only embedders (gte-Qwen2)
    ({"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False}, "error"),
])
def test_auto_pooling_follows_a_sentence_transformers_folder_and_refuses_what_it_lacks(tmp_path, pooling, expected):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    if expected == "error":
        with pytest.raises(RecognizeError, match=r"--pooling auto: .* pools by max_tokens .*pass --pooling mean, cls or last"):
            pooling_for(str(tmp_path), "bert", "auto")
    else:
        assert pooling_for(str(tmp_path), "bert", "auto") == expected
    assert pooling_for(str(tmp_path), "bert", "mean") == "mean"  # asked for: no folder is read


@pytest.mark.parametrize("model_id, model_type, expected", [
    ("sentence-transformers/all-mpnet-base-v2", "mpnet", "mean"),
    ("bert-base-uncased", "bert", "cls"),
    ("roberta-base", "roberta", "cls"),
    ("some-org/gpt-like", "gpt2", "mean"),
])
def test_auto_pooling_without_a_folder_goes_by_id_and_model_type(model_id, model_type, expected):
    assert pooling_for(model_id, model_type, "auto") == expected


TINY_TEXT = dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
CAUSAL_OR_NOT = {  # a tiny config -> whether the backbone load_backbone keeps attends causally
    "gpt2": (lambda: hf.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=2), True),
    "mamba": (lambda: hf.MambaConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, state_size=4), True),
    "bert as a decoder": (lambda: hf.BertConfig(is_decoder=True, **TINY_TEXT), True),
    "bert": (lambda: hf.BertConfig(**TINY_TEXT), False),
    # transformers offers these as causal LMs and not as masked LMs, yet the model AutoModel loads is bidirectional
    "bert-generation": (lambda: hf.BertGenerationConfig(**TINY_TEXT), False),
    "xlnet": (lambda: hf.XLNetConfig(vocab_size=99, d_model=32, n_layer=2, n_head=2, d_inner=64), False),
    "pegasus (its encoder)": (lambda: hf.PegasusConfig(vocab_size=99, d_model=32, encoder_layers=2, decoder_layers=2,
                                                        encoder_attention_heads=2, decoder_attention_heads=2,
                                                        encoder_ffn_dim=64, decoder_ffn_dim=64), False),
}


@pytest.mark.parametrize("name", CAUSAL_OR_NOT)
def test_cls_pooling_is_refused_only_for_a_backbone_whose_first_token_sees_nothing_after_it(tmp_path, name):
    make_config, causal = CAUSAL_OR_NOT[name]
    torch.manual_seed(0)
    hf.AutoModel.from_config(make_config()).save_pretrained(tmp_path)
    backbone = load_backbone(str(tmp_path))

    assert attends_causally(backbone) is causal
    assert backbone.training is False  # the probe leaves the backbone's mode as it was
    if causal:
        with pytest.raises(RecognizeError, match=rf"^--pooling cls: {tmp_path} is a decoder-only model "):
            resolve_pooling(str(tmp_path), backbone, "cls")
    else:
        assert resolve_pooling(str(tmp_path), backbone, "cls") == "cls"
    assert resolve_pooling(str(tmp_path), backbone, "cls", new_run=False) == "cls"  # a checkpoint saved before the check


@pytest.mark.parametrize("mode", ["full", "lora", "frozen"])
def test_the_checkpoint_keeps_the_batch_norm_statistics_that_training_updated(tmp_path, mode):
    folder = save_speech_model(tmp_path / "conformer", "wav2vec2-conformer")  # a batch norm in each convolution module
    models = [EmotionModel({"A": AudioEncoder(load_backbone(str(folder)))}, num_labels=7, dropout=0.0) for _ in range(2)]
    for model in models:
        apply_mode(model, mode, r=4, alpha=8, dropout=0.0)
    trained, reloaded = models
    batch = {"A": AudioFeatures(str(folder))(waves())}
    statistics = {n: b.clone() for n, b in trained.named_buffers() if "running_mean" in n}

    trained.train()(batch)  # a training step's forward pass: batch norms update their statistics
    reloaded.load_state_dict(checkpoint_state(trained), strict=False)

    changed = {n for n, b in trained.named_buffers() if n in statistics and not torch.equal(b, statistics[n])}
    assert bool(changed) == (mode != "frozen")  # a frozen encoder stays in eval mode
    assert changed <= set(checkpoint_state(trained))
    with torch.no_grad():
        assert torch.allclose(trained.eval()(batch), reloaded.eval()(batch), atol=1e-6)


def test_a_frozen_stage_keeps_the_batch_norm_statistics_it_took_from_a_trained_one_after_moving(tmp_path):
    """A frozen stage initialised from a full run takes that run's batch-norm statistics and
    stores them; moving the model (to a GPU, or here to float64 and back: either way every
    buffer becomes a new tensor) must not lose them."""
    folder = save_speech_model(tmp_path / "conformer", "wav2vec2-conformer")
    source = EmotionModel({"A": AudioEncoder(load_backbone(str(folder)))}, num_labels=7, dropout=0.0)
    apply_mode(source, "full")
    source.train()({"A": AudioFeatures(str(folder))(waves())})  # the statistics move away from the backbone's
    stage = EmotionModel({"A": AudioEncoder(load_backbone(str(folder)))}, num_labels=7, dropout=0.0)
    apply_mode(stage, "frozen")

    loaded = load_matching(stage, checkpoint_state(source))
    stage.double().float()

    statistics = {name for name in running_statistics(source) if name.startswith("encoders.")}
    assert statistics and statistics <= set(loaded)
    stored = checkpoint_state(stage)
    for name in statistics:
        assert torch.equal(stored[name], dict(stage.named_buffers())[name]) and torch.equal(stored[name], running_statistics(source)[name])


def test_a_nan_running_statistic_is_divergence_as_a_nan_weight_is(tmp_path):
    folder = save_speech_model(tmp_path / "conformer", "wav2vec2-conformer")
    model = EmotionModel({"A": AudioEncoder(load_backbone(str(folder)))}, num_labels=7, dropout=0.0)
    apply_mode(model, "full")
    check_finite(model, 1, 0.5)
    next(iter(running_statistics(model).values())).fill_(float("nan"))  # the statistics are saved and used in evaluation

    with pytest.raises(RecognizeError, match=r"^epoch 2: training diverged \(mean loss 0.5;"):
        check_finite(model, 2, 0.5)


def test_an_image_processor_that_makes_frames_of_another_size_than_the_model_takes_is_refused(tmp_path):
    folder = write_tiny_videomae(tmp_path / "videomae")  # 32x32 frames
    write_video_processor(folder, "VideoMAEImageProcessor", size={"shortest_edge": 64}, crop_size={"height": 64, "width": 48})

    with pytest.raises(RecognizeError) as error:
        VideoFrames(str(folder))

    assert str(error.value) == (f"--video-model {folder}: its image processor makes 64x48 frames and the model takes 32x32 "
                                "(preprocessor_config.json's crop_size or size)")
