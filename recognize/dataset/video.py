"""Video input: `num_frames` frames sampled uniformly over a clip, decoded with PyAV only as
far as the last frame needed (and converted to RGB arrays only where picked), then resized,
centre-cropped and normalised in torch with the settings of the model's image processor.

The number of frames comes from the model's config (VideoMAE, ViViT and TimeSformer bake
it into their position embeddings); a clip with fewer frames repeats some.
"""

from pathlib import Path

import av
import numpy as np
import torch
from torch.nn import functional as F
from transformers import AutoConfig, AutoImageProcessor

from recognize.errors import MediaError, RecognizeError, first_line, load_failure

RESIZE_MODES: dict[int, str] = {0: "nearest-exact", 2: "bilinear", 3: "bicubic"}
"""PIL resampling filter (as image processors store it) -> torch interpolation mode; any
other filter (box, hamming, lanczos) is approximated by bilinear."""


def sample_indices(total_frames: int, num_frames: int) -> list[int]:
    """The centre frame of each of `num_frames` equal segments of a `total_frames`-frame clip.

    Sorted, always `num_frames` long; frames repeat when the clip is shorter.
    """
    if total_frames < 1 or num_frames < 1:
        raise ValueError(f"sample_indices needs total_frames >= 1 and num_frames >= 1, got {total_frames}, {num_frames}")
    return [(2 * i + 1) * total_frames // (2 * num_frames) for i in range(num_frames)]


def read_frames(path: "str | Path", num_frames: int) -> np.ndarray:
    """`num_frames` frames sampled uniformly over the clip at `path`: (num_frames, H, W, 3) uint8 RGB.

    The frame count comes from the container (its frame count, else duration x frame rate);
    when the container does not say, or holds fewer frames than it says, the clip is decoded
    once to count them and once more to pick. Raises MediaError naming the file when it is
    missing, has no video stream or cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: video file not found")
    try:
        frames, decoded = _sample(path, num_frames, total=None)
        if frames is None:  # the frame count was unknown or wrong: `decoded` is now the true one
            if decoded == 0:
                raise MediaError(f"{path}: video stream holds no decodable frames")
            frames, _ = _sample(path, num_frames, total=decoded)
    except (av.FFmpegError, OSError) as error:
        raise MediaError(f"{path}: cannot decode video ({first_line(error)})") from None
    return frames


def declared_frame_count(container: av.container.InputContainer, stream: av.VideoStream) -> "int | None":
    """How many frames the container says `stream` holds: its frame count, else its duration
    (or the container's) times its frame rate; None when it says neither."""
    if stream.frames > 0:
        return stream.frames
    rate = stream.average_rate or stream.guessed_rate
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration:
        seconds = container.duration / av.time_base
    else:
        return None
    count = round(seconds * float(rate)) if rate else 0
    return count if count > 0 else None


def _sample(path: Path, num_frames: int, total: "int | None") -> "tuple[np.ndarray | None, int]":
    """Decode the clip up to the last frame that uniform sampling over `total` frames (the
    container's count when None) needs. Returns (frames, frames decoded); frames is None
    when the count was unknown or the stream ended early, and then the whole stream was
    decoded, so the second value is its true frame count."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = total or declared_frame_count(container, stream)
        indices = sample_indices(total, num_frames) if total else []
        wanted, last = set(indices), (indices[-1] if indices else -1)
        picked: dict[int, np.ndarray] = {}
        decoded = 0
        for index, frame in enumerate(container.decode(stream)):
            decoded += 1
            if index in wanted:
                picked[index] = frame.to_ndarray(format="rgb24")
            if index == last:
                return np.stack([picked[i] for i in indices]), decoded
    return None, decoded


class VideoFrames:
    """A video model's frame preprocessing: sampled frames -> (num_frames, 3, H, W) float32.

    Reads `num_frames` from the model's config and the resize, centre-crop, rescale and
    normalisation settings from its image processor, and applies them as the processor
    would (shortest edge or fixed size, antialiased resize of the 8-bit frames, centre
    crop, `x * rescale_factor` minus 1 with ViViT's `offset`, then `(x - mean) / std`), in
    torch, on the whole clip at once.
    """

    def __init__(self, model_id: str, trust_remote_code: bool = False) -> None:
        try:
            config = AutoConfig.from_pretrained(model_id, trust_remote_code=trust_remote_code)
            processor = AutoImageProcessor.from_pretrained(model_id, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as error:
            raise RecognizeError(load_failure("config and image processor", model_id, error, "--video-model")) from None
        if not getattr(config, "num_frames", None):
            raise RecognizeError(
                f"video model '{model_id}': its config has no num_frames (expected a video model such as "
                "VideoMAE, ViViT or TimeSformer)"
            )
        self.num_frames = int(config.num_frames)  # frames per clip the model takes
        self.size = _resize_target(model_id, processor.size) if processor.do_resize else None
        self.crop = _crop_target(model_id, processor.crop_size) if processor.do_center_crop else None
        self.mode = RESIZE_MODES.get(processor.resample, "bilinear")
        self.scale, self.shift = _affine(processor)
        _check_frame_size(model_id, config, self.crop or (self.size if isinstance(self.size, tuple) else None))

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 RGB frames -> (T, 3, H', W') float32 model input."""
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        if self.size is not None:
            video = self._resize(video)
        if self.crop is not None:
            video = _center_crop(video, *self.crop)
        return (video.float() * self.scale + self.shift).contiguous()

    def _resize(self, video: torch.Tensor) -> torch.Tensor:
        """Resize (T, 3, H, W) uint8 frames to the processor's size, staying uint8 as the
        processors do (PIL, or torchvision on uint8): torch's 8-bit antialiased kernels follow
        PIL's and are many times faster than resizing in float."""
        height, width = video.shape[-2:]
        size = _output_size(self.size, height, width)
        if size == (height, width):
            return video
        return F.interpolate(video, size=size, mode=self.mode, antialias=self.mode in ("bilinear", "bicubic"))


def _resize_target(model_id: str, size) -> "int | tuple[int, int]":
    """The processor's resize target: an int for "shortest edge", (height, width) for a fixed size."""
    shortest, height, width = (_field(size, key) for key in ("shortest_edge", "height", "width"))
    if shortest and not _field(size, "longest_edge"):
        return int(shortest)
    if height and width:
        return int(height), int(width)
    raise RecognizeError(f"video model '{model_id}': unsupported image processor size {size}; "
                         "supported: shortest_edge, or height and width")


def _crop_target(model_id: str, crop_size) -> tuple[int, int]:
    """The processor's centre crop as (height, width)."""
    height, width = _field(crop_size, "height"), _field(crop_size, "width")
    if not (height and width):
        raise RecognizeError(f"video model '{model_id}': image processor crop_size needs height and width")
    return int(height), int(width)


def _check_frame_size(model_id: str, config, frame_size: "tuple[int, int] | None") -> None:
    """Fail before any clip is read when the image processor makes frames of another size
    than the model's config takes (its position embeddings are fixed); `frame_size` None: the
    processor keeps the clip's aspect ratio, and the model checks each batch itself."""
    side = getattr(config, "image_size", None)
    expected = tuple(side) if isinstance(side, (list, tuple)) else (side, side)
    if side and frame_size and tuple(frame_size) != expected:
        raise RecognizeError(f"--video-model {model_id}: its image processor makes {frame_size[0]}x{frame_size[1]} frames "
                             f"and the model takes {expected[0]}x{expected[1]} (preprocessor_config.json's crop_size or size)")


def _field(size, key: str) -> "int | None":
    """`key` of a processor size (a dict in older processors, a SizeDict in newer ones)."""
    return size.get(key) if isinstance(size, dict) else getattr(size, key, None)


def _affine(processor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift) such that pixel * scale + shift equals the processor's
    rescale (with ViViT's offset) followed by its normalisation."""
    factor = float(processor.rescale_factor) if processor.do_rescale else 1.0
    offset = 1.0 if processor.do_rescale and getattr(processor, "offset", False) else 0.0
    mean = torch.as_tensor(processor.image_mean if processor.do_normalize else 0.0, dtype=torch.float32)
    std = torch.as_tensor(processor.image_std if processor.do_normalize else 1.0, dtype=torch.float32)
    return (factor / std).reshape(-1, 1, 1), ((-offset - mean) / std).reshape(-1, 1, 1)


def _output_size(target: "int | tuple[int, int]", height: int, width: int) -> tuple[int, int]:
    """(height, width) after resizing: a fixed size, or the short side to `target` keeping
    the aspect ratio (the long side rounded down, as transformers does)."""
    if isinstance(target, tuple):
        return target
    if width <= height:
        return int(target * height / width), target
    return target, int(target * width / height)


def _center_crop(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The centre (height, width) window of (T, 3, H, W) frames (offsets rounded down, as transformers does)."""
    full_height, full_width = video.shape[-2:]
    if height > full_height or width > full_width:
        raise RecognizeError(f"frames of {full_height}x{full_width} are smaller than the model's crop {height}x{width}")
    top, left = (full_height - height) // 2, (full_width - width) // 2
    return video[..., top:top + height, left:left + width]

