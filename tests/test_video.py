"""Video input (`recognize.dataset.video`): uniform frame indices, PyAV reading of generated
H.264 clips whose frame i has a known brightness (so the test sees *which* frames came
back, in mp4, in containers that only give a duration and in a raw stream that gives
neither), broken files, and the model's frame preprocessing checked against the
transformers image processors (VideoMAE, ViViT) on the same frames."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, BertConfig, VideoMAEConfig, VivitConfig

from recognize.dataset.video import VideoFrames, read_frames, sample_indices
from recognize.errors import MediaError, RecognizeError

HEIGHT, WIDTH = 48, 64


def level(index: int) -> int:
    """The grey level of frame `index` in the generated clips: 7 levels apart, so that H.264's
    error (about one level on flat frames) cannot confuse two frames."""
    return 20 + 7 * index


def write_clip(path: Path, frames: int, container_format: "str | None" = None) -> Path:
    """An H.264 clip of `frames` flat grey frames (frame i at `level(i)`), 24 fps, with B-frames."""
    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"crf": "18"}
        for index in range(frames):
            image = np.full((HEIGHT, WIDTH, 3), level(index), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_audio_only(path: Path) -> Path:
    """An mp4 holding one second of AAC audio and no video stream."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for start in range(0, 16000, 1024):
            samples = np.zeros((1, 1024), dtype=np.float32)
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def frame_levels(frames: np.ndarray) -> list[int]:
    """Which generated frame each returned frame is, from its mean grey level."""
    return [round(float(frame.mean() - 20) / 7) for frame in frames]


@pytest.mark.parametrize(("total", "num", "expected"), [
    (10, 4, [1, 3, 6, 8]),  # segments of 2.5 frames, centres 1.25, 3.75, 6.25, 8.75
    (72, 16, [2, 6, 11, 15, 20, 24, 29, 33, 38, 42, 47, 51, 56, 60, 65, 69]),  # a 3 s MELD clip at 24 fps
    (16, 16, list(range(16))),
    (5, 2, [1, 3]),
    (3, 8, [0, 0, 0, 1, 1, 2, 2, 2]),  # shorter than num_frames: frames repeat
    (1, 4, [0, 0, 0, 0]),
])
def test_sample_indices(total: int, num: int, expected: list[int]) -> None:
    assert sample_indices(total, num) == expected


def test_sample_indices_needs_a_frame() -> None:
    with pytest.raises(ValueError, match="total_frames >= 1"):
        sample_indices(0, 4)


@pytest.mark.parametrize(("name", "container_format"), [
    ("clip.mp4", None),  # the container gives the frame count
    ("clip.mkv", None),  # only a duration
    ("clip.h264", "h264"),  # neither: frames are counted by decoding
])
def test_read_frames_returns_the_sampled_frames(tmp_path: Path, name: str, container_format: "str | None") -> None:
    path = write_clip(tmp_path / name, 30, container_format)
    frames = read_frames(path, 8)
    assert frames.shape == (8, HEIGHT, WIDTH, 3) and frames.dtype == np.uint8
    assert frame_levels(frames) == sample_indices(30, 8)
    for frame, index in zip(frames, sample_indices(30, 8)):
        assert abs(float(frame.mean()) - level(index)) < 2.5  # H.264 at crf 18 on flat frames


@pytest.mark.parametrize(("frames", "num", "expected"), [(3, 8, [0, 0, 0, 1, 1, 2, 2, 2]), (1, 4, [0, 0, 0, 0])])
def test_short_clips_repeat_frames(tmp_path: Path, frames: int, num: int, expected: list[int]) -> None:
    read = read_frames(write_clip(tmp_path / "short.mp4", frames), num)
    assert read.shape == (num, HEIGHT, WIDTH, 3)
    assert frame_levels(read) == expected


def test_missing_video(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"dia110_utt7\.mp4: video file not found"):
        read_frames(tmp_path / "dia110_utt7.mp4", 8)


def test_truncated_mp4(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "dia125_utt3.mp4", 30)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # PyAV writes the moov atom last: now gone
    with pytest.raises(MediaError, match=r"dia125_utt3\.mp4: cannot decode video") as caught:
        read_frames(path, 8)
    assert "\n" not in str(caught.value)


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"noise\.mp4: cannot decode video"):
        read_frames(path, 8)


def test_no_video_stream(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"sound\.mp4: no video stream"):
        read_frames(write_audio_only(tmp_path / "sound.mp4"), 8)


VIDEOMAE_PROCESSOR = {
    "image_processor_type": "VideoMAEImageProcessor", "size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32},
    "do_center_crop": True, "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5], "resample": 2, "rescale_factor": 0.00392156862745098,
}
VIVIT_PROCESSOR = {
    "image_processor_type": "VivitImageProcessor", "size": {"shortest_edge": 32}, "crop_size": {"height": 32, "width": 32},
    "do_center_crop": True, "do_normalize": True, "do_rescale": True, "do_resize": True, "offset": True,
    "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "resample": 2, "rescale_factor": 1 / 127.5,
}


def model_folder(folder: Path, config, processor: dict) -> Path:
    """A model folder with `config` and `processor` as its preprocessor_config.json."""
    config.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(processor), encoding="utf-8")
    return folder


def videomae_config() -> VideoMAEConfig:
    """A tiny VideoMAE config: 32x32 images, 4 frames."""
    return VideoMAEConfig(image_size=32, patch_size=8, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=2, intermediate_size=64)


def vivit_config() -> VivitConfig:
    """A tiny ViViT config: 32x32 images, 4 frames."""
    return VivitConfig(image_size=32, num_frames=4, tubelet_size=[2, 8, 8], hidden_size=32, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=64)


def random_frames(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Four frames of smooth random colour blobs with noise: detail at every scale for the resize kernels."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, height // 8 + 1, width // 8 + 1, 3)).repeat(8, axis=1).repeat(8, axis=2)
    noisy = coarse[:, :height, :width] + rng.integers(-40, 41, (4, height, width, 3))
    return noisy.clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize(("config", "processor", "step"), [
    (videomae_config, VIDEOMAE_PROCESSOR, 1 / 255 / 0.5),  # one 8-bit level after normalisation
    (vivit_config, VIVIT_PROCESSOR, 1 / 127.5 / 0.5),
    (videomae_config, {**VIDEOMAE_PROCESSOR, "size": {"height": 32, "width": 32}, "do_center_crop": False}, 1 / 255 / 0.5),
], ids=["videomae", "vivit", "fixed-size"])
@pytest.mark.parametrize(("height", "width"), [(48, 64), (80, 40), (32, 32)], ids=["landscape", "portrait", "as-is"])
def test_video_frames_match_the_image_processor(tmp_path: Path, config, processor: dict, step: float,
                                                height: int, width: int) -> None:
    folder = model_folder(tmp_path / "model", config(), processor)
    frames = random_frames(height, width)
    video = VideoFrames(str(folder))
    assert video.num_frames == 4
    ours = video(frames)
    assert ours.shape == (4, 3, 32, 32) and ours.dtype == torch.float32
    reference = AutoImageProcessor.from_pretrained(folder)(list(frames), return_tensors="pt")["pixel_values"][0]
    difference = (ours - reference.float()).abs()
    # both resize 8-bit frames with antialiased separable kernels and round between passes;
    # torch's uint8 kernel follows PIL's fixed-point one: on landscape frames (MELD's shape)
    # they agree on all but ~0.2% of values, on portrait ones they may differ by up to two
    # levels (mean 0.21 level, measured); rescale and normalisation then agree to float precision
    assert difference.max().item() <= 2 * step + 1e-5
    assert difference.mean().item() < 0.25 * step


def test_video_frames_rescale_with_offset(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "vivit", vivit_config(), VIVIT_PROCESSOR)
    frames = np.stack([np.full((32, 32, 3), value, dtype=np.uint8) for value in (0, 255, 127, 64)])
    out = VideoFrames(str(folder))(frames)
    # x / 127.5 - 1 in [-1, 1], then (x - 0.5) / 0.5
    expected = [(value / 127.5 - 1 - 0.5) / 0.5 for value in (0, 255, 127, 64)]
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.tensor(expected))


def test_video_frames_need_num_frames(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "bert", BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                        intermediate_size=64), VIDEOMAE_PROCESSOR)
    with pytest.raises(RecognizeError, match="its config has no num_frames"):
        VideoFrames(str(folder))


def test_video_frames_unsupported_size(tmp_path: Path) -> None:
    processor = {**VIDEOMAE_PROCESSOR, "size": {"shortest_edge": 32, "longest_edge": 64}}
    with pytest.raises(RecognizeError, match="unsupported image processor size"):
        VideoFrames(str(model_folder(tmp_path / "model", videomae_config(), processor)))


def test_video_frames_smaller_than_the_crop(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "model", videomae_config(), {**VIDEOMAE_PROCESSOR, "do_resize": False})
    with pytest.raises(RecognizeError, match="frames of 20x24 are smaller than the model's crop 32x32"):
        VideoFrames(str(folder))(random_frames(20, 24))


def test_video_frames_missing_model() -> None:
    with pytest.raises(RecognizeError, match=r"cannot load the config and image processor of 'nobody/no-video'.*local folder"):
        VideoFrames("nobody/no-video")
