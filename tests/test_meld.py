"""The MELD loader (`recognize.dataset.meld`): text repair of the original release's
Windows-1252 leftovers, dialogue order with gapped ids, label indices, one-line errors,
and the real MELD CSVs where they are available (`../shared/meld` beside the checkout)."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recognize.dataset.meld import csv_path, disagreeing_labels, label_ids, load_split, repair_text
from recognize.errors import RecognizeError
from recognize.labels import EMOTIONS

HEADER: tuple[str, ...] = (
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
    "Season", "Episode", "StartTime", "EndTime",
)
"""MELD's real CSV header, in its order."""

REPAIRS: list[tuple[str, str]] = [
    ("I don\u0092t know\u0085", "I don't know..."),
    ("\u0091Cause I said so\u0092", "'Cause I said so'"),
    ("\u0093Pivot!\u0094 \u0096 he said \u0097 twice", '"Pivot!" - he said - twice'),
    ("Oh\u00a0\u00a0my\u00a0God", "Oh my God"),
    ("It\u2019s \u201cfine\u201d\u2026 really \u2013 no \u2014 wait \u2018ok\u2019", "It's \"fine\"... really - no - wait 'ok'"),
    ("  Hi,\t  there \n", "Hi, there"),
    ("Well\u0085\u00a0okay", "Well... okay"),
]
"""(raw utterance as in MELD's original release or a cleaned copy, the loader's text)."""

REAL_MELD = Path(__file__).resolve().parents[2] / "shared" / "meld"
needs_real_meld = pytest.mark.skipif(not csv_path(REAL_MELD, "train").is_file(), reason=f"no MELD CSVs at {REAL_MELD}")


def utterance(dialogue: "int | str", utterance_id: "int | str", text: str = "okay", speaker: str = "Ross",
              emotion: str = "neutral", sentiment: str = "neutral") -> dict[str, object]:
    """One MELD row; the columns the loader ignores get plausible values."""
    return {"Utterance": text, "Speaker": speaker, "Emotion": emotion, "Sentiment": sentiment,
            "Dialogue_ID": dialogue, "Utterance_ID": utterance_id, "Season": 3, "Episode": 7,
            "StartTime": "00:00:01,000", "EndTime": "00:00:02,500"}


def write_split(folder: Path, split: str, rows: list[dict[str, object]], columns: tuple[str, ...] = HEADER,
                encoding: str = "utf-8") -> Path:
    """Write `rows` as `folder/{split}_sent_emo.csv` with `columns` (Sr No. numbered from 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = csv_path(folder, split)
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({"Sr No.": number, **row} for number, row in enumerate(rows, 1))
    return path


def load_error(folder: Path, split: str = "train") -> str:
    """The message of the RecognizeError that loading `split` of `folder` raises."""
    with pytest.raises(RecognizeError) as error:
        load_split(folder, split)
    return str(error.value)


@pytest.mark.parametrize(("raw", "repaired"), REPAIRS)
def test_repair_text(raw: str, repaired: str) -> None:
    assert repair_text(raw) == repaired


def test_load_split_repairs_utterances_and_speakers(tmp_path: Path) -> None:
    rows = [utterance(0, i, raw) for i, (raw, _) in enumerate(REPAIRS)]
    rows.append(utterance(0, len(REPAIRS), "Hi", speaker="Mr.\u00a0Geller\u0092s\u00a0dad"))
    write_split(tmp_path, "train", rows)

    loaded = load_split(tmp_path, "train")

    assert loaded["text"].tolist() == [repaired for _, repaired in REPAIRS] + ["Hi"]
    assert loaded["speaker"].tolist() == ["Ross"] * len(REPAIRS) + ["Mr. Geller's dad"]


def test_rows_sorted_by_dialogue_then_utterance_with_ids_kept(tmp_path: Path) -> None:
    given = [(5, 2), (0, 3), (5, 0), (0, 0), (12, 7), (0, 1), (2, 4)]  # gaps everywhere, shuffled
    write_split(tmp_path, "dev", [utterance(d, u, f"d{d} u{u}") for d, u in given])

    loaded = load_split(tmp_path, "dev")

    assert list(loaded.columns) == ["dialogue_id", "utterance_id", "speaker", "text", "emotion", "sentiment"]
    assert loaded["dialogue_id"].tolist() == [0, 0, 0, 2, 5, 5, 12]
    assert loaded["utterance_id"].tolist() == [0, 1, 3, 4, 0, 2, 7]
    assert loaded["text"].tolist() == ["d0 u0", "d0 u1", "d0 u3", "d2 u4", "d5 u0", "d5 u2", "d12 u7"]
    assert loaded.index.tolist() == list(range(7))
    assert str(loaded["dialogue_id"].dtype) == str(loaded["utterance_id"].dtype) == "int64"


def test_empty_utterances_kept_and_na_words_left_alone(tmp_path: Path) -> None:
    texts = ["", "NA", " \u00a0 ", "null", "None"]
    write_split(tmp_path, "test", [utterance(1, i, text) for i, text in enumerate(texts)])

    assert load_split(tmp_path, "test")["text"].tolist() == ["", "NA", "", "null", "None"]


def test_label_ids_follow_the_fixed_label_order(tmp_path: Path) -> None:
    labels = [("fear", "negative"), ("neutral", "neutral"), ("Joy", "Positive"), ("disgust", "negative"),
              ("surprise", "positive"), (" sadness", "negative "), ("ANGER", "Negative"), ("joy", "positive")]
    write_split(tmp_path, "train", [utterance(0, i, emotion=e, sentiment=s) for i, (e, s) in enumerate(labels)])

    loaded = load_split(tmp_path, "train")

    assert loaded["emotion"].tolist() == ["fear", "neutral", "joy", "disgust", "surprise", "sadness", "anger", "joy"]
    np.testing.assert_array_equal(label_ids(loaded, "emotion"), np.array([6, 0, 1, 5, 2, 4, 3, 1]))
    np.testing.assert_array_equal(label_ids(loaded, "sentiment"), np.array([2, 0, 1, 2, 1, 2, 2, 1]))
    assert label_ids(loaded, "emotion").dtype == np.int64


def test_cp1252_file_is_read(tmp_path: Path) -> None:
    path = write_split(tmp_path, "train", [utterance(0, 0, "I don\u2019t know\u2026 \u201cPivot\u201d \u2013 ok")],
                       encoding="cp1252")
    with pytest.raises(UnicodeDecodeError):
        path.read_text(encoding="utf-8")  # the test's premise: not UTF-8

    assert load_split(tmp_path, "train")["text"].tolist() == ["I don't know... \"Pivot\" - ok"]


def test_a_file_of_mixed_encodings_is_an_error_naming_the_first_line_that_is_not_utf8(tmp_path: Path) -> None:
    path = write_split(tmp_path, "train", [utterance(0, 0, text="café"), utterance(0, 1, text="naïve")])
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace("naïve".encode("utf-8"), "naïve".encode("cp1252"))  # one row saved the other way
    path.write_bytes(b"\n".join(lines))

    assert load_error(tmp_path) == (f"{path}: line 3: byte 0xef is not UTF-8, but other lines are (mixed encodings); "
                                    "save the file as UTF-8")


def test_a_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    path = write_split(tmp_path, "train", [utterance(0, 0)], encoding="utf-16")

    assert load_error(tmp_path) == f"{path}: UTF-16 text; save the file as UTF-8"


def test_a_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    columns = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")  # a required one first
    write_split(tmp_path, "train", [utterance(0, 0, text="café")], columns=columns, encoding="utf-8-sig")

    assert load_split(tmp_path, "train")["text"].tolist() == ["café"]


def test_missing_folder(tmp_path: Path) -> None:
    folder = tmp_path / "absent"
    assert load_error(folder) == f"{folder}: data folder not found (expected a MELD folder with train_sent_emo.csv)"


def test_missing_csv(tmp_path: Path) -> None:
    write_split(tmp_path, "train", [utterance(0, 0)])
    (tmp_path / "val_sent_emo.csv").write_bytes(csv_path(tmp_path, "train").read_bytes())  # dev under another name
    assert load_error(tmp_path, "dev") == (f"{tmp_path / 'dev_sent_emo.csv'}: CSV not found in the data folder "
                                           "(it holds train_sent_emo.csv, val_sent_emo.csv)")


def test_a_data_folder_whose_csvs_are_one_folder_down_names_that_folder(tmp_path: Path) -> None:
    write_split(tmp_path / "data" / "MELD", "train", [utterance(0, 0)])
    write_split(tmp_path / "MELD", "train", [utterance(0, 0)])
    assert load_error(tmp_path) == (f"{tmp_path / 'train_sent_emo.csv'}: CSV not found in the data folder (it holds no "
                                    f"CSV; pass the folder that does: {tmp_path / 'MELD'})")


def test_unknown_split(tmp_path: Path) -> None:
    assert load_error(tmp_path, "val") == "--split: unknown value 'val'; valid: train, dev, test"


def test_missing_columns_are_named(tmp_path: Path) -> None:
    columns = tuple(c for c in HEADER if c not in ("Emotion", "Utterance_ID"))
    path = write_split(tmp_path, "train", [utterance(0, 0)], columns=columns)

    assert load_error(tmp_path).startswith(f"{path}: missing column(s) Emotion, Utterance_ID; found Sr No., Utterance,")


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("emotion", "happy", "unknown emotion label 'happy'; valid: neutral, joy, surprise, anger, sadness, disgust, fear"),
    ("sentiment", "mixed", "unknown sentiment label 'mixed'; valid: neutral, positive, negative"),
])
def test_unknown_label_names_file_row_and_value(tmp_path: Path, column: str, value: str, expected: str) -> None:
    rows = [utterance(0, 0), utterance(0, 1), utterance(0, 2, **{column: value}), utterance(0, 3)]
    path = write_split(tmp_path, "train", rows)

    assert load_error(tmp_path) == f"{path}: row 3: {expected}"


@pytest.mark.parametrize(("dialogue", "utterance_id", "expected"), [
    ("d1", 0, "Dialogue_ID 'd1' is not an integer"),
    ("1.5", 0, "Dialogue_ID '1.5' is not an integer"),
    (1, "first", "Utterance_ID 'first' is not an integer"),
    ("-3", 0, "Dialogue_ID '-3' is out of range (0 to 2147483647)"),
    (1, "1e20", "Utterance_ID '1e20' is out of range (0 to 2147483647)"),  # would wrap around in int64
])
def test_non_integer_id_names_file_row_and_value(tmp_path: Path, dialogue: str, utterance_id: str, expected: str) -> None:
    path = write_split(tmp_path, "dev", [utterance(0, 0), utterance(dialogue, utterance_id)])

    assert load_error(tmp_path, "dev") == f"{path}: row 2: {expected}"


def test_a_csv_with_only_its_header_is_an_error(tmp_path: Path) -> None:
    path = write_split(tmp_path, "dev", [])

    assert load_error(tmp_path, "dev") == f"{path}: no data rows, only the header"


def test_duplicate_id_pair(tmp_path: Path) -> None:
    path = write_split(tmp_path, "train", [utterance(4, 0), utterance(4, 1), utterance(4, 0)])

    assert load_error(tmp_path) == f"{path}: row 3: duplicate Dialogue_ID/Utterance_ID pair"


def header_line(columns: tuple[str, ...] = HEADER) -> str:
    """MELD's header as a CSV line."""
    return ",".join(columns) + "\n"


UNQUOTED_COMMA = "1,Oh, no,Ross,neutral,neutral,0,0,3,7,a,b\n"
"""A row whose utterance holds a comma but is not quoted: 12 fields."""
ROW = "2,okay,Ross,joy,positive,0,1,3,7,a,b\n"


@pytest.mark.parametrize(("lines", "line", "fields"), [
    ([UNQUOTED_COMMA, ROW], 2, 12),  # pandas took the first column for an index and shifted every row's columns
    ([ROW, UNQUOTED_COMMA], 3, 12),
    ([ROW.rstrip() + ",\n", ROW.replace(",0,1,", ",0,2,").rstrip() + ",\n"], 2, 12),  # a comma ending every row
    (['1,"Oh no,Ross,neutral,neutral,0,0,3,7,a,b\n', ROW], 2, 2),  # a quote never closed runs to the end of the file
    (["1,Oh\n", "no,Ross,neutral,neutral,0,0,3,7,a,b\n"], 2, 2),  # a line break in an utterance not quoted
])
def test_a_row_with_more_or_fewer_fields_than_the_header_names_its_line(tmp_path, lines, line, fields) -> None:
    path = csv_path(tmp_path, "train")
    path.write_text(header_line() + "".join(lines))

    assert load_error(tmp_path) == (f"{path}: line {line}: {fields} fields where the header has 11 "
                                    "(a comma, quote or line break in a text that is not quoted?)")


def test_a_quote_never_closed_in_a_long_file_is_a_one_line_error(tmp_path: Path) -> None:
    path = csv_path(tmp_path, "train")  # csv's field limit (128 KB) is met before the end of the file
    path.write_text(header_line() + '1,"Oh no,Ross,neutral,neutral,0,0,3,7,a,b\n' + ROW * 15000)

    assert load_error(tmp_path) == (f"{path}: line 2: not a readable CSV (field larger than field limit (131072); "
                                    "a quote that is never closed?)")


def test_a_line_of_spaces_is_passed_over_as_pandas_does(tmp_path: Path) -> None:
    path = csv_path(tmp_path, "train")
    path.write_text(header_line() + ROW + "   \n" + ROW.replace(",0,1,", ",0,2,"))

    assert load_split(tmp_path, "train")["utterance_id"].tolist() == [1, 2]


def test_a_column_the_header_names_twice_is_an_error(tmp_path: Path) -> None:
    path = csv_path(tmp_path, "train")
    path.write_text(header_line((*HEADER[:-1], "Emotion")) + ROW)  # pandas read the first, renamed the second Emotion.1

    assert load_error(tmp_path) == f"{path}: line 1: the header names column 'Emotion' twice"


def test_spaces_around_header_names_and_a_header_ending_in_a_comma_are_accepted(tmp_path: Path) -> None:
    path = csv_path(tmp_path, "train")
    path.write_text(header_line(tuple(f" {name} " for name in HEADER)).replace("\n", ",\n") + ROW)

    assert load_split(tmp_path, "train")[["text", "emotion"]].values.tolist() == [["okay", "joy"]]


@pytest.fixture(scope="module")
def real_train():
    """The real MELD train split."""
    return load_split(REAL_MELD, "train")


@pytest.mark.slow
@needs_real_meld
@pytest.mark.parametrize(("split", "size"), [("train", 9989), ("dev", 1109), ("test", 2610)])
def test_real_split_sizes(split: str, size: int) -> None:
    rows = load_split(REAL_MELD, split)
    assert len(rows) == size
    assert disagreeing_labels(rows).empty  # MELD gives each emotion its sentiments (surprise either way): no warning


def test_a_sentiment_meld_never_gives_its_emotion_is_found() -> None:
    rows = pd.DataFrame({"emotion": ["joy", "surprise", "surprise", "anger", "neutral", "fear"],
                         "sentiment": ["negative", "positive", "negative", "negative", "positive", "negative"]})
    assert disagreeing_labels(rows).index.tolist() == [0, 4]


@pytest.mark.slow
@needs_real_meld
def test_real_train_labels_and_gaps(real_train) -> None:
    counts = {"neutral": 4710, "joy": 1743, "surprise": 1205, "anger": 1109, "sadness": 683, "disgust": 271, "fear": 268}
    assert real_train["emotion"].value_counts().to_dict() == counts
    assert np.bincount(label_ids(real_train, "emotion")).tolist() == [counts[e] for e in EMOTIONS]
    assert np.bincount(label_ids(real_train, "sentiment")).tolist() == [4710, 2334, 2945]
    dialogues = set(real_train["dialogue_id"])
    assert 60 not in dialogues and {59, 61} <= dialogues
    assert real_train.iloc[1].to_dict() == {
        "dialogue_id": 0, "utterance_id": 1, "speaker": "The Interviewer",
        "text": "You must've had your hands full.", "emotion": "neutral", "sentiment": "neutral",
    }
