"""`prepare` on a generated MELD.Raw folder with the release's broken cases: the exact
report, the flac files (16 kHz mono, the clip's length, the label's pitch), the video
links, the repaired CSVs, a second run, a killed run, the videos/ layout as source, and
the one-line errors for bad input."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from typer.testing import CliRunner

from recognize.checkpoint import read_json
from recognize.cli import app
from recognize.dataset import prepare as prepare_module
from recognize.dataset.media import clip_name
from recognize.dataset.meld import SPLITS, load_split, repair_text
from recognize.dataset.prepare import CATEGORIES, RAW_FOLDERS, REPORT, prepare
from recognize.dataset.synthetic import CLIP_FPS, CLIP_SECONDS, broken_cases, tone_hz, write_synthetic_meld_raw
from recognize.labels import EMOTIONS

CAP = 2.5
"""--max-seconds for these tests: over the clips (CLIP_SECONDS), under the long one (LONG_SECONDS)."""
RATE = 16000


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    """A generated MELD.Raw folder with every broken case."""
    return write_synthetic_meld_raw(tmp_path_factory.mktemp("raw") / "MELD.Raw")


@pytest.fixture(scope="module")
def prepared(raw: Path, tmp_path_factory) -> tuple[Path, dict]:
    """`raw` prepared once, with two worker processes: (output folder, report)."""
    output = tmp_path_factory.mktemp("prepared") / "MELD"
    return output, prepare(raw, output, workers=2, max_seconds=CAP)


def row_names(root: Path, split: str) -> list[str]:
    """The clip names of a split's CSV rows, in (Dialogue_ID, Utterance_ID) order."""
    rows = load_split(root, split)
    return [clip_name(d, u) for d, u in zip(rows["dialogue_id"], rows["utterance_id"])]


def expected_clips(raw: Path) -> dict[str, dict[str, list[str]]]:
    """The report's "clips" for a first run on `raw`, from its CSVs and `broken_cases`."""
    cases = broken_cases(raw)
    clips = {category: {split: [] for split in SPLITS} for category in CATEGORIES}
    for case, category in (("missing", "missing"), ("unreadable", "unreadable"), ("no_audio", "no_audio"),
                           ("silent", "silent"), ("long", "over_cap"), ("no_row", "no_row"), ("final_videos", "ignored")):
        split, names = cases[case]
        clips[category][split] = names
    for split in SPLITS:
        unusable = {*clips["missing"][split], *clips["unreadable"][split], *clips["no_audio"][split]}
        clips["extracted"][split] = [name for name in row_names(raw, split) if name not in unusable]
    return clips


def flacs(folder: Path) -> dict[str, list[str]]:
    """Split -> the names (without .flac) of the files in folder/audios/{split}, sorted; every file counts."""
    return {split: sorted(p.name.removesuffix(".flac") for p in (folder / "audios" / split).iterdir()) for split in SPLITS}


def test_report_lists_every_clip_by_category(raw: Path, prepared: tuple[Path, dict]) -> None:
    output, report = prepared
    clips = expected_clips(raw)

    assert report["clips"] == clips
    assert report["counts"] == {category: sum(map(len, by_split.values())) for category, by_split in clips.items()}
    assert report["counts"]["extracted"] > 20
    split, (unreadable,) = broken_cases(raw)["unreadable"]
    assert set(report["errors"][split]) == {unreadable} and sum(map(len, report["errors"].values())) == 1
    assert (report["layout"], report["sample_rate"], report["max_seconds"], report["removed_temp_files"]) == ("MELD.Raw", RATE, CAP, 0)
    assert (report["source"], report["output"]) == (str(raw.resolve()), str(output.resolve()))
    assert read_json(output / REPORT) == report


def test_prepared_files_are_readable_by_all(prepared: tuple[Path, dict]) -> None:
    output, _ = prepared
    files = [output / REPORT, output / "train_sent_emo.csv", *(output / "audios").rglob("*.flac")]

    assert {oct(path.stat().st_mode & 0o777) for path in files} == {"0o644"}


def test_flac_files_are_16k_mono_with_the_clips_length_and_pitch(raw: Path, prepared: tuple[Path, dict]) -> None:
    output, report = prepared
    cases = broken_cases(raw)
    lengths = {(cases["one_frame"][0], cases["one_frame"][1][0]): 1 / CLIP_FPS, (cases["long"][0], cases["long"][1][0]): CAP}
    silent = (cases["silent"][0], cases["silent"][1][0])

    assert flacs(output) == {split: sorted(names) for split, names in report["clips"]["extracted"].items()}
    for split in SPLITS:
        rows = load_split(raw, split)
        for name, emotion in zip(row_names(raw, split), rows["emotion"]):
            if name not in report["clips"]["extracted"][split]:
                continue
            wave, rate = soundfile.read(output / "audios" / split / f"{name}.flac", dtype="float32", always_2d=True)
            assert (rate, wave.shape[1]) == (RATE, 1), name
            assert len(wave) == round(lengths.get((split, name), CLIP_SECONDS) * RATE), name  # AAC's padding trimmed
            if (split, name) == silent:
                assert np.abs(wave).max() == 0.0
                continue
            assert 0.25 < np.abs(wave).max() < 0.35, name  # the tone's 0.3: channels averaged, not summed
            spectrum = np.abs(np.fft.rfft(wave[:, 0]))
            assert abs(np.argmax(spectrum) * RATE / len(wave) - tone_hz(EMOTIONS.index(emotion))) < 5, name


def test_videos_are_links_to_every_rows_clip(raw: Path, prepared: tuple[Path, dict]) -> None:
    output, report = prepared

    for split in SPLITS:
        linked = [name for category in ("extracted", "unreadable", "no_audio") for name in report["clips"][category][split]]
        links = sorted((output / "videos" / split).iterdir())
        assert sorted(p.name for p in links) == sorted(f"{name}.mp4" for name in linked)
        for link in links:
            assert link.is_symlink() and link.resolve() == (raw / RAW_FOLDERS[split] / link.name).resolve()


def test_csvs_are_copied_with_the_text_repaired(raw: Path, prepared: tuple[Path, dict]) -> None:
    output, _ = prepared
    for split in SPLITS:
        source = pd.read_csv(raw / f"{split}_sent_emo.csv", dtype=str, keep_default_na=False)
        copy = pd.read_csv(output / f"{split}_sent_emo.csv", dtype=str, keep_default_na=False)

        assert "\u0092" in source["Utterance"].iloc[0] and "\u0085" in source["Utterance"].iloc[0]
        assert list(copy.columns) == list(source.columns)
        assert copy["Utterance"].tolist() == [repair_text(text) for text in source["Utterance"]]
        assert copy["Utterance"].iloc[0].startswith("don't ") and copy["Utterance"].iloc[0].endswith("...")
        other = [c for c in source.columns if c != "Utterance"]
        assert copy[other].equals(source[other])


def test_second_run_extracts_nothing_and_reports_the_same(raw: Path, prepared: tuple[Path, dict]) -> None:
    output, first = prepared
    times = {p: p.stat().st_mtime_ns for p in (output / "audios").rglob("*.flac")}

    second = prepare(raw, output, workers=1, max_seconds=CAP)

    assert second["clips"] == {**first["clips"], "extracted": {split: [] for split in SPLITS},
                               "skipped": first["clips"]["extracted"]}
    assert {p: p.stat().st_mtime_ns for p in (output / "audios").rglob("*.flac")} == times


def test_killed_run_leaves_no_partial_flac_and_a_rerun_completes(raw: Path, tmp_path: Path, monkeypatch) -> None:
    output = tmp_path / "MELD"
    written = []

    def write_then_die(path: Path, samples: np.ndarray) -> None:
        if len(written) == 2:
            path.write_bytes(b"fLaC half a file")
            raise KeyboardInterrupt  # Ctrl-C half-way through the third flac
        soundfile.write(path, samples, RATE, format="FLAC")
        written.append(path)

    monkeypatch.setattr(prepare_module, "write_flac", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        prepare(raw, output, workers=1, max_seconds=CAP)
    monkeypatch.undo()
    finished = flacs(output)
    assert sum(map(len, finished.values())) == 2  # the half-written one was removed
    # what a SIGKILL leaves: temp files that nothing removed
    (output / "audios" / "test" / ".dia1_utt1.flac.x1y2z3.tmp").write_bytes(b"fLaC half a file")
    (output / "videos" / "test" / ".dia1_utt1.mp4.1234.tmp").symlink_to(raw / "absent.mp4")

    report = prepare(raw, output, workers=2, max_seconds=CAP)

    everything = expected_clips(raw)["extracted"]
    assert report["removed_temp_files"] == 2
    assert report["clips"]["skipped"] == finished
    assert report["clips"]["extracted"] == {s: [n for n in everything[s] if n not in finished[s]] for s in SPLITS}
    assert flacs(output) == {split: sorted(names) for split, names in everything.items()}
    assert not list(output.rglob("*.tmp"))


def test_damaged_flac_is_extracted_again(raw: Path, tmp_path: Path) -> None:
    output = tmp_path / "MELD"
    first = prepare(raw, output, workers=1, max_seconds=CAP)
    damaged = first["clips"]["extracted"]["dev"][-1]  # a CLIP_SECONDS clip (the first is the one-frame one)
    (output / "audios" / "dev" / f"{damaged}.flac").write_bytes(b"not a flac")

    second = prepare(raw, output, workers=1, max_seconds=CAP)

    assert second["clips"]["extracted"] == {"train": [], "dev": [damaged], "test": []}
    assert soundfile.info(str(output / "audios" / "dev" / f"{damaged}.flac")).frames == CLIP_SECONDS * RATE


def test_videos_layout_as_source_and_in_place(raw: Path, prepared: tuple[Path, dict], tmp_path: Path) -> None:
    first_output, first = prepared
    output = tmp_path / "again"

    report = prepare(first_output, output, workers=1, max_seconds=CAP)

    assert report["layout"] == "videos"
    assert report["clips"] == {**first["clips"], "no_row": {s: [] for s in SPLITS}, "ignored": {s: [] for s in SPLITS}}
    for link in (output / "videos").rglob("*.mp4"):  # straight to the original clips, not through the first links
        assert link.is_symlink() and Path(link.readlink()).parent.parent == raw.resolve()
    for split in SPLITS:
        assert (output / f"{split}_sent_emo.csv").read_text() == (first_output / f"{split}_sent_emo.csv").read_text()

    links = {p: p.readlink() for p in (output / "videos").rglob("*.mp4")}
    in_place = prepare(output, workers=1, max_seconds=CAP)

    assert in_place["clips"]["extracted"] == {s: [] for s in SPLITS}
    assert in_place["clips"]["skipped"] == first["clips"]["extracted"]
    assert {p: p.readlink() for p in (output / "videos").rglob("*.mp4")} == links


def test_cli_prepares_and_prints_a_summary(raw: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["prepare", str(raw), "--output", str(tmp_path / "MELD"), "--max-seconds", str(CAP),
                                      "--workers", "1"])

    assert result.exit_code == 0, result.output
    lines = {line.split()[1]: line.split()[2:] for line in result.stdout.splitlines() if line.startswith("│")}
    counts = {category: sum(map(len, by_split.values())) for category, by_split in expected_clips(raw).items()}
    assert {category: int(cells[-2]) for category, cells in lines.items()} == counts
    assert "wrote " in result.stdout and (tmp_path / "MELD" / REPORT).is_file()


def error_line(*args: object) -> str:
    """Run the CLI with `args`; check it failed with one line on stderr, and return that line."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


EXPECTED = ("expected MELD.Raw (train_splits/, dev_splits_complete/, output_repeated_splits_test/ beside the CSVs) "
            "or videos/{train,dev,test}/")


def test_bad_source_is_one_line(raw: Path, tmp_path: Path) -> None:
    only_csvs = tmp_path / "only-csvs"
    only_csvs.mkdir()
    for split in SPLITS:
        (only_csvs / f"{split}_sent_emo.csv").write_bytes((raw / f"{split}_sent_emo.csv").read_bytes())
    partial = tmp_path / "partial"
    (partial / "train_splits").mkdir(parents=True)
    (partial / "output_repeated_splits_test").mkdir()
    no_csv = tmp_path / "no-csv"
    for split in SPLITS:
        (no_csv / "videos" / split).mkdir(parents=True)

    assert error_line("prepare", tmp_path / "absent") == f"error: {tmp_path / 'absent'}: folder not found ({EXPECTED})"
    assert error_line("prepare", only_csvs) == f"error: {only_csvs}: no clip folders ({EXPECTED})"
    assert error_line("prepare", partial) == f"error: {partial}: MELD.Raw layout without dev_splits_complete/ ({EXPECTED})"
    assert error_line("prepare", no_csv) == f"error: {no_csv / 'train_sent_emo.csv'}: CSV not found in the data folder (it holds no CSV)"


def test_bad_settings_are_one_line(raw: Path, prepared: tuple[Path, dict], tmp_path: Path) -> None:
    output, _ = prepared
    (tmp_path / "file").write_text("")

    assert error_line("prepare", raw, "--workers", "0") == "error: --workers: must be at least 1, got 0"
    assert error_line("prepare", raw, "--max-seconds", "0") == "error: --max-seconds: must be positive, got 0"
    assert error_line("prepare", raw, "--output", tmp_path / "file") == f"error: {tmp_path / 'file'}: exists and is not a folder"
    assert error_line("prepare", raw, "--output", output, "--max-seconds", "9") == (
        f"error: {output}: prepared with --max-seconds {CAP:g}; run again with it, or delete {output / 'audios'} to extract with 9")
