"""Audio input: a clip read as a mono float32 waveform at the model's rate (resampled with
scipy's `resample_poly` when the file is at another rate, cropped to a length cap), and a
batch of waveforms turned into the model's inputs by its own feature extractor, padded to
the longest clip with an attention mask.

Two families of feature extractors are supported, which cover the audio encoders the
toolkit targets:

- `Wav2Vec2FeatureExtractor` (wav2vec2, HuBERT, WavLM, data2vec-audio): the raw waveform,
  normalised per utterance over its own samples (when the extractor's `do_normalize` is
  set), returned as {"input_values": (B, L), "attention_mask": (B, L)}.
- `WhisperFeatureExtractor`: log-mel features of a fixed window (its `chunk_length`: 30 s,
  3000 frames, in the released models), returned as {"input_features": (B, mels, frames),
  "attention_mask": (B, frames)} (1 on real frames). The window must be what the encoder
  takes and hold `--max-audio-seconds` (`check_audio_fits`): the extractor would cut a
  longer clip to it without a word.
"""

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile
import torch
from scipy.signal import resample_poly
from transformers import AutoFeatureExtractor, Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

from recognize.errors import MediaError, RecognizeError, first_line, load_failure


VIDEO_CONTAINERS: frozenset[str] = frozenset({".mp4", ".mkv", ".avi", ".mov", ".webm"})
"""File endings of video containers: their first audio stream is decoded with PyAV (FFmpeg)."""


class NoAudioStream(Exception):
    """A clip without a usable audio stream."""


def read_waveform(path: "str | Path", rate: int, max_seconds: float) -> np.ndarray:
    """The clip at `path` as float32 mono at `rate` Hz, at most `max_seconds` long.

    Stereo (or more channels) is averaged to mono; a file at another rate is resampled
    with `scipy.signal.resample_poly` by the exact rational ratio of the two rates. Only
    the part of the file that survives the crop is read. A video container (MELD's own
    mp4 clips) gives its first audio stream, decoded and resampled by FFmpeg as `prepare`
    extracts it. Raises MediaError naming the file when it is missing, cannot be decoded,
    or holds no samples.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: audio file not found")
    limit = max(1, round(max_seconds * rate))
    if path.suffix.lower() in VIDEO_CONTAINERS:
        try:
            return decode_audio(path, limit, rate)
        except NoAudioStream:
            raise MediaError(f"{path}: no audio stream, or an empty one") from None
        except (av.FFmpegError, OSError) as error:
            raise MediaError(f"{path}: cannot read audio ({first_line(error)})") from None
    try:
        with soundfile.SoundFile(path) as handle:
            source_rate = handle.samplerate
            frames = int(np.ceil(max_seconds * source_rate)) + _filter_reach(source_rate, rate)
            samples = handle.read(frames=frames, dtype="float32", always_2d=True)
    except (soundfile.SoundFileError, RuntimeError, OSError) as error:
        raise MediaError(f"{path}: cannot read audio ({first_line(error)})") from None
    if len(samples) == 0:
        raise MediaError(f"{path}: audio file holds no samples")
    wave = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    return resample(wave, source_rate, rate)[:limit]


def decode_audio(clip: Path, limit: int, rate: int) -> np.ndarray:
    """The first audio stream of `clip` as float32 mono at `rate` Hz: at most `limit`
    samples (decoding stops once it has them) and no longer than the stream's declared
    duration (AAC pads its last frame). Channels are averaged (FFmpeg's own downmix adds
    them at -3 dB each, which can clip). Raises NoAudioStream for a clip without audio."""
    with av.open(str(clip)) as container:
        if not container.streams.audio:
            raise NoAudioStream
        stream = container.streams.audio[0]
        if stream.duration:
            limit = min(limit, round(stream.duration * stream.time_base * rate))
        resampler = av.AudioResampler(format="fltp", rate=rate)
        chunks, total = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().mean(axis=0))
                total += len(chunks[-1])
            if total >= limit:
                break
        else:
            chunks += [out.to_ndarray().mean(axis=0) for out in resampler.resample(None)]
    samples = np.concatenate(chunks)[:limit] if chunks else np.zeros(0, dtype=np.float32)
    if not len(samples):
        raise NoAudioStream
    return samples


def _filter_reach(source_rate: int, rate: int) -> int:
    """Source samples past the crop that `resample_poly`'s filter reads (its half-length of
    10 taps per phase, in source samples): read with the crop, the last output samples are
    the same as those of the whole file resampled, instead of fading towards zero."""
    if source_rate == rate:
        return 0
    ratio = Fraction(rate, source_rate)
    return int(np.ceil(10 * max(ratio.numerator, ratio.denominator) / ratio.numerator)) + 1


def minimum_samples(model_config) -> int:
    """The fewest samples a speech model's convolutional feature encoder turns into one
    frame (its receptive field: 400 for wav2vec2-base), from the config's `conv_kernel` and
    `conv_stride`; 1 for a model without them (Whisper pads every clip to its window)."""
    kernels, strides = getattr(model_config, "conv_kernel", None), getattr(model_config, "conv_stride", None)
    if not kernels or not strides:
        return 1
    samples = 1
    for kernel, stride in zip(reversed(kernels), reversed(strides)):
        samples = (samples - 1) * stride + kernel
    return samples


def resample(wave: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    """`wave` (1-D) from `source_rate` to `rate` Hz as float32, by polyphase filtering."""
    if source_rate == rate:
        return wave.astype(np.float32, copy=False)
    ratio = Fraction(rate, source_rate)
    return resample_poly(wave, ratio.numerator, ratio.denominator).astype(np.float32)


WHISPER_FRAMES_PER_POSITION = 2
"""Mel frames per position of Whisper's encoder (its second convolution has stride 2)."""


class AudioFeatures:
    """A speech model's feature extractor applied to batches of waveforms (see the module
    docstring for the two supported families and what each returns)."""

    def __init__(self, model_id: str, trust_remote_code: bool = False, min_samples: int = 1) -> None:
        """`min_samples`: a shorter clip is extended with silence to this many samples, which
        count as the clip's own (see `minimum_samples`): a speech model's convolutions cannot
        run on less, and a clip with no frame left would have nothing to pool."""
        self.min_samples = min_samples
        try:
            extractor = AutoFeatureExtractor.from_pretrained(model_id, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as error:
            raise RecognizeError(load_failure("feature extractor", model_id, error, "--audio-model")) from None
        if not isinstance(extractor, (Wav2Vec2FeatureExtractor, WhisperFeatureExtractor)):
            raise RecognizeError(
                f"audio model '{model_id}': unsupported feature extractor {type(extractor).__name__}; "
                "supported: Wav2Vec2FeatureExtractor (wav2vec2, HuBERT, WavLM, data2vec-audio), WhisperFeatureExtractor"
            )
        self.extractor = extractor

    @property
    def sampling_rate(self) -> int:
        """The rate in Hz the model expects its waveforms at."""
        return int(self.extractor.sampling_rate)

    def __call__(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Model inputs for a batch of mono waveforms at `sampling_rate`, with an attention mask."""
        if isinstance(self.extractor, WhisperFeatureExtractor):
            return self._log_mel(waves)
        return self._waveforms(waves)

    def _waveforms(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Raw-waveform inputs: each wave normalised over its own samples, extended with
        silence to `min_samples` where shorter, then padded."""
        # unpadded, one wave at a time: the extractor normalises over the whole array it gets,
        # so padding it first would count the padding's zeros in the mean and variance
        values = [self.extractor(wave, sampling_rate=self.sampling_rate)["input_values"][0] for wave in waves]
        width = max(self.min_samples, *(len(v) for v in values))
        input_values = torch.full((len(values), width), float(self.extractor.padding_value), dtype=torch.float32)
        attention_mask = torch.zeros((len(values), width), dtype=torch.long)
        for row, value in enumerate(values):
            input_values[row, :len(value)] = torch.from_numpy(np.asarray(value, dtype=np.float32))
            attention_mask[row, :max(len(value), self.min_samples)] = 1
        return {"input_values": input_values, "attention_mask": attention_mask}

    def _log_mel(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Whisper inputs: log-mel features of the fixed window and the mask of real frames."""
        out = self.extractor(waves, sampling_rate=self.sampling_rate, return_attention_mask=True, return_tensors="pt")
        return {"input_features": out["input_features"].float(), "attention_mask": out["attention_mask"].long()}



def check_audio_fits(model_id: str, features: AudioFeatures, model_config, max_seconds: "float | None") -> None:
    """Fail before training, not at the first batch, when a Whisper feature extractor's window
    (its `chunk_length`) is not what the encoder takes (`max_source_positions` x 2 frames of
    `num_mel_bins`), or when `max_seconds` (`--max-audio-seconds`; None for a saved
    checkpoint, checked when it trained) is longer than the window, whose extractor would cut
    every longer clip to it. Other extractors take a clip of any length."""
    extractor = features.extractor
    if not isinstance(extractor, WhisperFeatureExtractor):
        return
    window = extractor.n_samples / extractor.sampling_rate
    positions, mels = getattr(model_config, "max_source_positions", None), getattr(model_config, "num_mel_bins", None)
    if positions and mels and (extractor.nb_max_frames, extractor.feature_size) != (positions * WHISPER_FRAMES_PER_POSITION, mels):
        raise RecognizeError(f"--audio-model {model_id}: its feature extractor makes {extractor.nb_max_frames} frames of "
                             f"{extractor.feature_size} mel bins ({window:g} s windows) and its encoder takes "
                             f"{positions * WHISPER_FRAMES_PER_POSITION} of {mels} (max_source_positions {positions}, "
                             f"num_mel_bins {mels}): the two do not belong together")
    if max_seconds is not None and max_seconds > window:
        raise RecognizeError(f"--max-audio-seconds {max_seconds:g}: {model_id} hears {window:g} s at a time (its feature "
                             f"extractor's chunk_length) and would drop the rest of a longer clip; give at most {window:g}")
