"""Read MELD's `{train,dev,test}_sent_emo.csv`: repair the text, check labels and ids, keep
dialogue order. One split becomes a DataFrame with one row per utterance:

    dialogue_id, utterance_id, speaker, text, emotion, sentiment

sorted by (dialogue_id, utterance_id), so that the utterances before a row in its dialogue
are the rows above it. Ids are kept as given: MELD has gaps (train dialogue 60 does not
exist, some utterance ids are skipped) and nothing here assumes they are contiguous.
"""

import csv
import hashlib
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd

from recognize.errors import RecognizeError
from recognize.labels import CSV_COLUMN, LABELS, SENTIMENTS_OF_EMOTION

SPLITS: tuple[str, ...] = ("train", "dev", "test")
REQUIRED_COLUMNS: tuple[str, ...] = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")

TEXT_REPAIRS: dict[str, str] = {
    "\u0085": "...",  # Windows-1252 0x85, horizontal ellipsis, left as a C1 control
    "\u0091": "'", "\u0092": "'",  # 0x91 / 0x92: single quotes
    "\u0093": '"', "\u0094": '"',  # 0x93 / 0x94: double quotes
    "\u0096": "-", "\u0097": "-",  # 0x96 / 0x97: en and em dash
    "\u00a0": " ",  # no-break space
    # the same characters where a cleaned copy has them as proper Unicode, so that both
    # releases of MELD give the same text
    "\u2026": "...", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
}
_REPAIR_TABLE = str.maketrans(TEXT_REPAIRS)


def csv_path(root: "str | Path", split: str) -> Path:
    """The CSV of `split` in the MELD folder `root`."""
    return Path(root) / f"{split}_sent_emo.csv"


def repair_text(text: str) -> str:
    """Replace the Windows-1252 control characters (and typographic quotes, dashes, ellipses)
    of MELD's utterances with plain ASCII, and collapse runs of whitespace."""
    return " ".join(text.translate(_REPAIR_TABLE).split())


def load_split(root: "str | Path", split: str) -> pd.DataFrame:
    """Load, check and repair one split of the MELD folder `root`.

    Raises RecognizeError naming the file (and data row, counted from 1) for a missing folder or CSV, missing
    columns, no rows, unknown labels or non-integer ids, and (by line) a row with more or fewer fields than
    the header or a column the header repeats. Empty utterances are kept as "".
    """
    if split not in SPLITS:
        raise RecognizeError(f"--split: unknown value '{split}'; valid: {', '.join(SPLITS)}")
    path = existing_csv(root, split)
    raw = read_raw_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise RecognizeError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, raw.columns))}")
    if raw.empty:
        raise RecognizeError(f"{path}: no data rows, only the header")
    rows = pd.DataFrame({
        "dialogue_id": integer_column(raw, "Dialogue_ID", path),
        "utterance_id": integer_column(raw, "Utterance_ID", path),
        "speaker": raw["Speaker"].fillna("").astype(str).map(repair_text),
        "text": raw["Utterance"].fillna("").astype(str).map(repair_text),
    })
    for task, column in CSV_COLUMN.items():
        rows[task] = _label_column(raw, column, LABELS[task], path)
    duplicated = rows.duplicated(["dialogue_id", "utterance_id"])
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0]) + 1
        raise RecognizeError(f"{path}: row {row}: duplicate Dialogue_ID/Utterance_ID pair")
    return rows.sort_values(["dialogue_id", "utterance_id"], kind="stable").reset_index(drop=True)


def existing_csv(root: "str | Path", split: str) -> Path:
    """The CSV of `split` in the MELD folder `root`; RecognizeError when the folder is missing,
    or the CSV is, naming what the folder holds instead."""
    root = Path(root)
    if not root.is_dir():
        raise RecognizeError(f"{root}: data folder not found (expected a MELD folder with {split}_sent_emo.csv)")
    path = csv_path(root, split)
    if not path.is_file():
        raise RecognizeError(f"{path}: CSV not found in the data folder ({csv_files_in(root)})")
    return path


def csv_files_in(root: Path) -> str:
    """What the data folder `root` holds instead, for an error: its CSV files (e.g. a
    `val_sent_emo.csv` to rename), else the MELD CSVs one folder down, else that it has none."""
    names = sorted(p.name for p in root.glob("*.csv"))
    if names:
        return f"it holds {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}"
    below = sorted({str(p.parent) for p in root.glob("*/*_sent_emo.csv")})
    if below:
        return f"it holds no CSV; pass the folder that does: {', '.join(below)}"
    return "it holds no CSV"


def label_ids(rows: pd.DataFrame, task: str) -> np.ndarray:
    """The class index of every row for `task`, in the fixed order of `recognize.labels`."""
    index = {name: i for i, name in enumerate(LABELS[task])}
    return rows[task].map(index).to_numpy(dtype=np.int64)


def disagreeing_labels(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows (of `load_split`) whose sentiment is not one MELD gives their emotion (joy and
    negative, say): an edited or shifted label column."""
    allowed = [sentiment in SENTIMENTS_OF_EMOTION[emotion] for emotion, sentiment in zip(rows["emotion"], rows["sentiment"])]
    return rows[~np.asarray(allowed, dtype=bool)]


def data_fingerprint(root: "str | Path") -> str:
    """A short SHA-256 over the split CSVs present in `root`, to record which data a run saw."""
    digest = hashlib.sha256()
    for split in SPLITS:
        path = csv_path(root, split)
        if path.is_file():
            digest.update(split.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


UTF8_SEQUENCE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")
"""A multi-byte UTF-8 character: in a file that is not valid UTF-8, a sign of mixed encodings
(Windows-1252 text holds such byte pairs only by rare accident)."""


def read_raw_csv(path: Path) -> pd.DataFrame:
    """Read a MELD CSV as strings, unrepaired; UTF-8 first, Windows-1252 for files saved that
    way. A file that is UTF-8 in places and not in others is an error naming the first line
    that is not: decoding all of it as Windows-1252 would garble every UTF-8 character."""
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise RecognizeError(f"{path}: UTF-16 text; save the file as UTF-8")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark, as Excel writes, is dropped
    except UnicodeDecodeError as error:
        if UTF8_SEQUENCE.search(data):
            line = data[:error.start].count(b"\n") + 1
            raise RecognizeError(f"{path}: line {line}: byte {data[error.start]:#04x} is not UTF-8, but other lines "
                                 "are (mixed encodings); save the file as UTF-8") from None
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise RecognizeError(f"{path}: neither UTF-8 nor Windows-1252 text") from None
    check_fields(text, path)
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise RecognizeError(f"{path}: not a readable CSV ({str(error).splitlines()[0]})") from None
    return raw.rename(columns=str.strip)  # "Emotion " as a spreadsheet may leave it


def check_fields(text: str, path: Path) -> None:
    """Fail naming the line of the first record whose number of fields is not the header's,
    and a column name the header repeats (after trimming spaces). pandas would take a first
    data row with one field more as having an index column, shift every column of every row
    by one and fail later on an unrelated "label"; and of a repeated column it reads the first."""
    records = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(records, [])]
    named = [name for name in header if name]
    repeated = next((name for name in named if named.count(name) > 1), None)
    if repeated is not None:
        raise RecognizeError(f"{path}: line 1: the header names column '{repeated}' twice")
    named_width = len(header)
    while named_width and not header[named_width - 1]:
        named_width -= 1
    widths = {len(header), named_width}  # a header ending in commas: rows may leave those unnamed columns out
    line = records.line_num
    try:
        for record in records:
            if any(field.strip() for field in record) and len(record) not in widths:  # blank lines are passed over
                raise RecognizeError(f"{path}: line {line + 1}: {len(record)} fields where the header has {len(header)} "
                                     "(a comma, quote or line break in a text that is not quoted?)")
            line = records.line_num
    except csv.Error as error:  # e.g. a quote never closed, reading the rest of a long file as one field
        raise RecognizeError(f"{path}: line {line + 1}: not a readable CSV ({error}; a quote that is never closed?)") from None


MAX_ID = 2**31 - 1
"""The largest Dialogue_ID / Utterance_ID accepted (MELD's are below 1,100): larger values,
like negative ones, are typos, and past 2^63 they would wrap around silently."""


def integer_column(raw: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """`column` as int64, or an error naming the first row whose value is not an integer."""
    text = raw[column].fillna("").str.strip()
    values = pd.to_numeric(text, errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise RecognizeError(f"{path}: row {row + 1}: {column} '{text.iloc[row]}' is not an integer")
    outside = (values < 0) | (values > MAX_ID)
    if outside.any():
        row = int(np.flatnonzero(outside.to_numpy())[0])
        raise RecognizeError(f"{path}: row {row + 1}: {column} '{text.iloc[row]}' is out of range (0 to {MAX_ID})")
    return values.astype(np.int64)


def _label_column(raw: pd.DataFrame, column: str, valid: tuple[str, ...], path: Path) -> pd.Series:
    """`column` lower-cased and checked against `valid`, or an error naming the first bad row."""
    text = raw[column].fillna("").str.strip()
    values = text.str.lower()
    bad = ~values.isin(valid)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise RecognizeError(
            f"{path}: row {row + 1}: unknown {column.lower()} label '{text.iloc[row]}'; valid: {', '.join(valid)}"
        )
    return values
