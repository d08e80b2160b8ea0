"""Audio input (`recognize.dataset.audio`): reading flac/wav at the model's rate (resampling,
mono, crop, broken files), and batches through a wav2vec2-style and a Whisper feature
extractor (normalisation over the real samples only, exact padding and masks)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from transformers import ASTFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from recognize.dataset.audio import AudioFeatures, read_waveform, resample
from recognize.dataset.synthetic import tone_hz, write_clip
from recognize.errors import MediaError, RecognizeError


def tone(frequency: float, seconds: float, rate: int) -> np.ndarray:
    """A sine at `frequency` Hz, amplitude 0.5, float32."""
    return (0.5 * np.sin(2 * np.pi * frequency * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


def write_audio(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write `samples` ((N,) or (N, channels)) as a 16-bit file whose format follows the suffix."""
    soundfile.write(path, samples, rate, subtype="PCM_16")
    return path


def peak_frequency(wave: np.ndarray, rate: int) -> float:
    """The frequency in Hz of the largest FFT bin of `wave`."""
    spectrum = np.abs(np.fft.rfft(wave))
    return float(np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()])


def test_resampling_keeps_the_tone_and_the_length(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "a.flac", tone(440.0, 2.0, 44100), 44100)
    wave = read_waveform(path, rate=16000, max_seconds=10.0)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 32000  # 88,200 samples x 160/441
    assert peak_frequency(wave, 16000) == pytest.approx(440.0, abs=0.5)  # FFT bins are 0.5 Hz apart
    assert np.abs(wave).max() == pytest.approx(0.5, abs=0.02)  # the tone is far below the new Nyquist: no loss


def test_a_file_at_the_model_rate_is_read_as_is(tmp_path: Path) -> None:
    samples = tone(300.0, 0.5, 16000)
    path = write_audio(tmp_path / "a.wav", samples, 16000)
    np.testing.assert_allclose(read_waveform(path, 16000, 10.0), samples, atol=1 / 32768)  # 16-bit quantisation


def test_stereo_is_averaged_to_mono(tmp_path: Path) -> None:
    left, right = tone(200.0, 0.5, 16000), tone(700.0, 0.5, 16000) * 0.5
    path = write_audio(tmp_path / "stereo.flac", np.stack([left, right], axis=1), 16000)
    np.testing.assert_allclose(read_waveform(path, 16000, 10.0), (left + right) / 2, atol=1 / 32768)


@pytest.mark.parametrize(("source_rate", "max_seconds", "expected"), [
    (16000, 1.5, 24000), (16000, 0.25, 4000), (44100, 1.0, 16000), (16000, 10.0, 48000),
])
def test_crop_to_max_seconds(tmp_path: Path, source_rate: int, max_seconds: float, expected: int) -> None:
    samples = tone(250.0, 3.0, source_rate)
    path = write_audio(tmp_path / "long.flac", samples, source_rate)
    wave = read_waveform(path, 16000, max_seconds)
    assert len(wave) == expected
    if source_rate == 16000:
        np.testing.assert_allclose(wave, samples[:expected], atol=1 / 32768)  # the start is kept


@pytest.mark.parametrize("source_rate", [8000, 22050, 44100])
def test_a_cropped_clip_at_another_rate_ends_as_the_whole_file_resampled_would(tmp_path: Path, source_rate: int) -> None:
    samples = (0.3 * np.random.default_rng(0).standard_normal(3 * source_rate)).astype(np.float32)
    path = write_audio(tmp_path / "long.wav", samples, source_rate)
    whole = resample(soundfile.read(path, dtype="float32")[0], source_rate, 16000)

    wave = read_waveform(path, 16000, 1.234)

    np.testing.assert_allclose(wave, whole[:len(wave)], atol=1e-5)  # the last samples too: no fade where the read stopped


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "dia1_utt0.flac"
    with pytest.raises(MediaError, match="dia1_utt0.flac: audio file not found"):
        read_waveform(path, 16000, 10.0)


@pytest.mark.parametrize("content", [b"", b"fLaC" + bytes(range(256)) * 4, bytes(1000)])
def test_corrupt_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "dia2_utt3.flac"
    path.write_bytes(content)
    with pytest.raises(MediaError, match=r"dia2_utt3\.flac: cannot read audio") as caught:
        read_waveform(path, 16000, 10.0)
    assert "\n" not in str(caught.value) and str(caught.value).count("dia2_utt3") == 1


def test_empty_file(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "silent.wav", np.zeros(0, dtype=np.float32), 16000)  # libsndfile cannot read a 0-sample flac
    with pytest.raises(MediaError, match="silent.wav: audio file holds no samples"):
        read_waveform(path, 16000, 10.0)


@pytest.fixture(params=[True, False], ids=["mask", "no-mask"])
def wav2vec2_folder(request, tmp_path: Path) -> Path:
    """A wav2vec2 feature extractor (do_normalize) saved to a folder, with and without return_attention_mask."""
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=True, return_attention_mask=request.param).save_pretrained(tmp_path)
    return tmp_path


def waves() -> list[np.ndarray]:
    """Three waves of different lengths, means and scales."""
    rng = np.random.default_rng(0)
    return [(rng.normal(size=n) * scale + shift).astype(np.float32) for n, scale, shift in ((70, 2.0, 1.0), (100, 0.5, -0.3), (31, 1.0, 0.0))]


def test_wav2vec2_batch_is_normalised_over_real_samples_and_padded(wav2vec2_folder: Path) -> None:
    features = AudioFeatures(str(wav2vec2_folder))
    assert features.sampling_rate == 16000
    batch = features(waves())
    assert set(batch) == {"input_values", "attention_mask"}
    assert batch["input_values"].shape == (3, 100) and batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].dtype == torch.long
    for row, wave in enumerate(waves()):
        n = len(wave)
        expected = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        np.testing.assert_allclose(batch["input_values"][row, :n].numpy(), expected, rtol=1e-5, atol=1e-5)
        assert batch["input_values"][row, n:].eq(0).all()
        assert batch["attention_mask"][row].tolist() == [1] * n + [0] * (100 - n)


def test_wav2vec2_without_normalisation_passes_samples_through(tmp_path: Path) -> None:
    Wav2Vec2FeatureExtractor(sampling_rate=16000, do_normalize=False).save_pretrained(tmp_path)
    batch = AudioFeatures(str(tmp_path))(waves())
    for row, wave in enumerate(waves()):
        np.testing.assert_array_equal(batch["input_values"][row, :len(wave)].numpy(), wave)


def test_whisper_log_mel_and_frame_mask(tmp_path: Path) -> None:
    WhisperFeatureExtractor().save_pretrained(tmp_path)
    features = AudioFeatures(str(tmp_path))
    assert features.sampling_rate == 16000
    batch_waves = [tone(300.0, 1.0, 16000), tone(500.0, 2.5, 16000)]
    batch = features(batch_waves)
    assert set(batch) == {"input_features", "attention_mask"}
    assert batch["input_features"].shape == (2, 80, 3000) and batch["input_features"].dtype == torch.float32
    assert batch["attention_mask"].dtype == torch.long
    assert batch["attention_mask"][0].tolist() == [1] * 100 + [0] * 2900  # 10 ms hop: 100 frames a second
    assert batch["attention_mask"][1].tolist() == [1] * 250 + [0] * 2750
    reference = WhisperFeatureExtractor()(batch_waves, sampling_rate=16000, return_tensors="pt")["input_features"]
    torch.testing.assert_close(batch["input_features"], reference)


@pytest.mark.filterwarnings("ignore:At least one mel filter")  # AST's default mel bank, irrelevant here
def test_unsupported_or_missing_extractor(tmp_path: Path) -> None:
    with pytest.raises(RecognizeError, match=r"cannot load the feature extractor of 'nobody/no-such-model'.*local folder"):
        AudioFeatures("nobody/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RecognizeError, match="cannot load the feature extractor from folder"):
        AudioFeatures(str(tmp_path / "empty"))
    ASTFeatureExtractor().save_pretrained(tmp_path / "ast")
    with pytest.raises(RecognizeError, match="unsupported feature extractor ASTFeatureExtractor"):
        AudioFeatures(str(tmp_path / "ast"))


@pytest.mark.parametrize("rate", [16000, 8000])
def test_the_sound_of_a_video_clip_is_its_tone_at_the_model_rate(tmp_path: Path, rate: int) -> None:
    clip = write_clip(tmp_path / "dia3_utt1.mp4", emotion_index=2, seconds=1.0)  # AAC, stereo, 48 kHz, as MELD's
    wave = read_waveform(clip, rate, 10.0)
    assert abs(len(wave) - rate) <= rate // 100  # one second, give or take AAC's framing
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.fft.rfftfreq(len(wave), 1 / rate)[spectrum.argmax()] == pytest.approx(tone_hz(2), abs=2.0)
    assert len(read_waveform(clip, rate, 0.25)) == rate // 4


def test_a_video_clip_without_sound_is_a_media_error(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "dia4_utt0.mp4", emotion_index=0, seconds=0.5, audio=False)
    with pytest.raises(MediaError, match=r"dia4_utt0\.mp4: no audio stream"):
        read_waveform(clip, 16000, 10.0)
    broken = tmp_path / "dia4_utt1.mp4"
    broken.write_bytes(bytes(500))
    with pytest.raises(MediaError, match=r"dia4_utt1\.mp4: cannot read audio"):
        read_waveform(broken, 16000, 10.0)
