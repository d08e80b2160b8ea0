"""`prepare` throughput: mp4 clips to 16 kHz mono flac, in clips per second, against a
baseline on the same clips in the same run.

Clips are generated like MELD's (3 s, 1280x720 24 fps H.264 + AAC stereo 48 kHz; the
picture is half a panning random texture so that decoding it costs about what footage
does) in a MELD folder of the videos/ layout, with CSV rows for exactly --clips clips.

Methods, each timed from an empty output folder (the clips are in the page cache):
- "prepare": `recognize.dataset.prepare.prepare` end to end (CSVs, video links, audio
  decoded alone, resampled, flac written, report), once with 1 worker and once with
  --workers processes.
- the baseline, one clip after another in one process: a per-file
  `ffmpeg -i CLIP -vn -ac 1 -ar 16000 FLAC` subprocess when an ffmpeg binary is on PATH
  ("ffmpeg_per_file"); otherwise PyAV decoding every stream of each clip, video frames
  too (with frame threading), then resampling the audio and writing the same flac
  ("pyav_decode_all").

Prints one JSON line per run (benchmark, method, workers, clips, seconds,
clips_per_second, machine) and one comparing them.

usage: python benchmarks/prepare_audio.py [--clips 40] [--workers N] [--seconds 3] [--size 1280x720]
       [--fps 24] [--output FILE.jsonl]
"""

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import soundfile

from recognize.dataset.media import clip_name
from recognize.dataset.prepare import SAMPLE_RATE, prepare, write_flac
from recognize.dataset.synthetic import split_rows, write_clip
from recognize.labels import EMOTIONS

from jsonl import emit, machine

BENCHMARK = "prepare_audio"


def write_folder(folder: Path, clips: int, seconds: float, width: int, height: int, fps: int) -> list[Path]:
    """A MELD folder (three CSVs, videos/{split}/) with `clips` clips, all but two in train;
    return the clips."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for split, count in {"train": clips - 2, "dev": 1, "test": 1}.items():
        rows = split_rows(split, count, rng, noise=0.0).head(count)
        rows.to_csv(folder / f"{split}_sent_emo.csv", index=False)
        for dialogue, utterance, emotion in zip(rows["Dialogue_ID"], rows["Utterance_ID"], rows["Emotion"]):
            path = folder / "videos" / split / f"{clip_name(dialogue, utterance)}.mp4"
            paths.append(write_clip(path, EMOTIONS.index(emotion), seconds=seconds, width=width, height=height,
                                    fps=fps, texture=True))
    return paths


def run_prepare(source: Path, output: Path, workers: int) -> float:
    """Seconds for `prepare` of `source` into the empty folder `output`."""
    start = time.perf_counter()
    report = prepare(source, output, workers=workers, max_seconds=60)
    seconds = time.perf_counter() - start
    assert report["counts"]["extracted"] == sum(map(len, report["clips"]["extracted"].values())) > 0
    return seconds


def ffmpeg_per_file(clip: Path, flac: Path) -> None:
    """The shell loop users write: one ffmpeg process per clip."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(clip), "-vn", "-ac", "1",
                    "-ar", str(SAMPLE_RATE), str(flac)], check=True)


def pyav_decode_all(clip: Path, flac: Path) -> None:
    """Decode every stream of the clip (video frames too), keep the audio as 16 kHz mono."""
    resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
    chunks = []
    with av.open(str(clip)) as container:
        for stream in container.streams.video:
            stream.thread_type = "AUTO"
        for frame in container.decode(*container.streams):
            if isinstance(frame, av.AudioFrame):
                chunks += [out.to_ndarray().mean(axis=0) for out in resampler.resample(frame)]
    chunks += [out.to_ndarray().mean(axis=0) for out in resampler.resample(None)]
    write_flac(flac, np.concatenate(chunks))


def run_baseline(extract, clips: list[Path], output: Path) -> float:
    """Seconds for `extract(clip, flac)` on every clip, one after another."""
    output.mkdir(parents=True)
    start = time.perf_counter()
    for clip in clips:
        extract(clip, output / f"{clip.parent.name}-{clip.stem}.flac")
    seconds = time.perf_counter() - start
    assert all(soundfile.info(str(path)).samplerate == SAMPLE_RATE for path in output.iterdir())
    return seconds


def main() -> None:
    """Parse the arguments, time `prepare` against the baseline on the same clips, print the JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=40, help="clips in all (at least 3)")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="prepare's processes")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of the clips")
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--output", help="also append the JSON lines to this file")
    args = parser.parse_args()
    if args.clips < 3:
        parser.error("--clips: at least 3 (one in dev and in test)")
    width, height = map(int, args.size.split("x"))
    baseline = ("ffmpeg_per_file", ffmpeg_per_file) if shutil.which("ffmpeg") else ("pyav_decode_all", pyav_decode_all)
    with tempfile.TemporaryDirectory() as workdir:
        source = Path(workdir) / "MELD"
        clips = write_folder(source, args.clips, args.seconds, width, height, args.fps)
        common = {"benchmark": BENCHMARK, "clips": len(clips), "clip": f"{args.seconds:g} s {width}x{height} {args.fps} fps H.264 + AAC",
                  "machine": machine(f"PyAV {av.__version__}")}
        timings = {("prepare", workers): run_prepare(source, Path(workdir) / f"workers-{workers}", workers)
                   for workers in sorted({1, args.workers})}
        timings[(baseline[0], 1)] = run_baseline(baseline[1], clips, Path(workdir) / "baseline")
    for (method, workers), seconds in timings.items():
        emit({**common, "method": method, "workers": workers, "seconds": round(seconds, 3),
              "clips_per_second": round(len(clips) / seconds, 2)}, args.output)
    base = timings[(baseline[0], 1)]
    emit({"benchmark": BENCHMARK, "comparison": f"prepare vs {baseline[0]} (1 process)", "clips": len(clips),
          **{f"speedup_workers_{workers}": round(base / seconds, 2) for (method, workers), seconds in timings.items()
             if method == "prepare"},
          "machine": machine(f"PyAV {av.__version__}")}, args.output)


if __name__ == "__main__":
    main()
