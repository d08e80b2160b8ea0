"""Video frame sampling speed: `read_frames` (decode up to the last frame needed, convert to
RGB arrays only the frames picked) against the naive path (decode every frame, convert
every frame to an array, then pick the same indices), on the same clips in the same run.
Both decode with PyAV's frame threading (thread_type "AUTO"), so the difference is what
the sampling saves, not the threading. After the timing, an untimed pass checks that both
paths return identical frames for every clip.

Clips are generated (3 s, 1280x720, 24 fps H.264, panning texture with a moving block, like
MELD's; about 0.5 Mbit/s, so decoding is cheaper than on busier footage), or taken from
a folder of real clips with --videos (e.g. MELD's train_splits).

Prints one JSON line per method (benchmark, method, clips, seconds, clips_per_second,
machine, ...) and one comparing them.

usage: python benchmarks/video_sampling.py [--clips 20] [--seconds 3] [--size 1280x720] [--fps 24]
       [--num-frames 16] [--videos DIR] [--output FILE.jsonl]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

from recognize.dataset.video import read_frames, sample_indices

from jsonl import emit, machine


def write_clip(path: Path, seconds: float, width: int, height: int, fps: int, seed: int) -> Path:
    """An H.264 clip (yuv420p, x264 defaults but the "veryfast" preset) of a smooth random
    texture panning right, with a bright block moving across it."""
    rng = np.random.default_rng(seed)
    frames = round(seconds * fps)
    small = rng.integers(0, 256, (height // 16, (width + 4 * frames) // 16, 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(small).resize((width + 4 * frames, height), Image.BICUBIC))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"}
        for index in range(frames):
            image = texture[:, 4 * index:4 * index + width].copy()
            top, left = height // 3, (index * width) // frames
            image[top:top + height // 4, left:left + width // 8] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def naive_frames(path: Path, num_frames: int) -> np.ndarray:
    """Decode every frame of the clip to an RGB array, then pick the uniformly sampled ones."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        every = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return np.stack([every[i] for i in sample_indices(len(every), num_frames)])


def time_method(read, paths: list[Path], num_frames: int) -> float:
    """Seconds to read `num_frames` frames from every clip with `read` (after one warm-up read)."""
    read(paths[0], num_frames)  # codec initialisation, page cache
    start = time.perf_counter()
    for path in paths:
        read(path, num_frames)
    return time.perf_counter() - start


def readable(paths: list[Path]) -> list[Path]:
    """The clips whose container opens and has a video stream (MELD has a few broken ones)."""
    kept = []
    for path in paths:
        try:
            with av.open(str(path)) as container:
                if container.streams.video:
                    kept.append(path)
        except (av.FFmpegError, OSError):
            print(f"skipped unreadable clip {path}", file=sys.stderr)
    return kept


def main() -> None:
    """Parse the arguments, time both sampling paths on the same generated clips, print the JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of generated clips")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--num-frames", type=int, default=16)
    parser.add_argument("--videos", help="a folder of real .mp4 clips to use instead of generated ones")
    parser.add_argument("--output", help="also append the JSON lines to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        if args.videos:
            paths = readable(sorted(Path(args.videos).glob("*.mp4"))[:args.clips])
            source = f"{args.videos} (first {len(paths)} readable clips)"
        else:
            width, height = map(int, args.size.split("x"))
            paths = [write_clip(Path(workdir) / f"clip{i}.mp4", args.seconds, width, height, args.fps, seed=i)
                     for i in range(args.clips)]
            source = f"generated {args.seconds:g} s {width}x{height} {args.fps} fps H.264"
        timings = {"decode_all": time_method(naive_frames, paths, args.num_frames),
                   "read_frames": time_method(read_frames, paths, args.num_frames)}
        identical = all(np.array_equal(naive_frames(p, args.num_frames), read_frames(p, args.num_frames)) for p in paths)
    common = {"benchmark": "video_sampling", "clips": len(paths), "num_frames": args.num_frames, "source": source}
    for method, seconds in timings.items():
        emit({**common, "method": method, "seconds": round(seconds, 2),
              "clips_per_second": round(len(paths) / seconds, 2), "machine": machine(f"PyAV {av.__version__}")}, args.output)
    emit({**common, "method": "comparison", "speedup": round(timings["decode_all"] / timings["read_frames"], 2),
          "identical_frames": identical, "machine": machine(f"PyAV {av.__version__}")}, args.output)


if __name__ == "__main__":
    main()
