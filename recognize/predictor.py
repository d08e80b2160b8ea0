"""`predict`: class probabilities for utterances outside any MELD split, one given on the
command line or each row of a CSV, preprocessed as the checkpoint's training data was
(tokenizer, dialogue context, audio and video settings, all read from its config.json).

A batch CSV has a column `Utterance` (when the model reads text) and `Audio` / `Video`
(clip paths, relative to the CSV's folder, when it reads those); `Speaker`, `Dialogue_ID`
and `Utterance_ID` are optional: with a context size, a row's context is the rows before
it in its dialogue (with `--future-context`, also the rows after it), by Utterance_ID when
the CSV has one, else in file order. The output
keeps the file's order, and numbers its rows in a first column `row` as errors number them:
data rows counted from 1 below the header, blank lines (and lines of spaces) passed over and
not counted, a quoted text over several lines one row."""

from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
import torch

from recognize.builder import clip_reader, eval_loader
from recognize.checkpoint import read_checkpoint_config
from recognize.dataset.loader import MediaSource, UtteranceDataset
from recognize.dataset.meld import integer_column, read_raw_csv, repair_text
from recognize.dataset.text import tokenize_rows
from recognize.engine import predict_loader
from recognize.errors import MediaError, RecognizeError
from recognize.evaluator import load_trained

INPUT_FLAGS = {"T": "--text", "A": "--audio", "V": "--video"}
INPUT_COLUMNS = {"T": "Utterance", "A": "Audio", "V": "Video"}
ROW_COLUMN = "row"
"""The output's first column: each input row's number, counted as errors count rows."""


def predict_utterance(folder: "str | Path", text: Optional[str] = None, audio: Optional[str] = None,
                      video: Optional[str] = None, context: "list[str] | None" = None, speaker: str = "",
                      mask_missing: bool = False, trust_remote_code: bool = False) -> dict[str, float]:
    """Class name -> probability for one utterance; `context` holds the utterances before
    it, oldest first (each may read "Speaker: text"). With `mask_missing`, an audio or video
    input the model takes but that is not given is masked, as `eval` masks a missing clip.
    Model code from a repository runs only with `trust_remote_code`."""
    given = {"T": text, "A": audio, "V": video}
    context = context or []
    rows = pd.DataFrame({"dialogue_id": 0, "speaker": [""] * len(context) + [speaker],
                         "text": [repair_text(t) for t in [*context, text or ""]]})
    paths = {m: [None] * len(context) + [None if given[m] is None else Path(given[m])] for m in ("A", "V")}
    clip_places = {m: {Path(given[m]): INPUT_FLAGS[m]} for m in ("A", "V") if given[m] is not None}
    names, probabilities = _probabilities(folder, rows, paths, dict(INPUT_FLAGS), clip_places,
                                          given={m for m, v in given.items() if v is not None}, has_context=bool(context),
                                          mask_missing=mask_missing, trust_remote_code=trust_remote_code)
    return dict(zip(names, probabilities[-1].tolist()))


def predict_file(folder: "str | Path", path: "str | Path", mask_missing: bool = False,
                 trust_remote_code: bool = False) -> pd.DataFrame:
    """The rows of the CSV `path` after a `row` column (each row's number, as errors give it),
    with a `prediction` column and a `p_{class}` column per class; a CSV that has a column of
    one of those names is refused. With `mask_missing`, an Audio or Video column the model reads
    may be absent, or a cell of it empty: that row's clip is masked, as `eval` masks a missing
    clip. Model code from a repository runs only with `trust_remote_code`."""
    path = Path(path)
    if not path.is_file():
        raise RecognizeError(f"--input {path}: file not found")
    raw = read_raw_csv(path)
    if raw.empty:
        raise RecognizeError(f"--input {path}: no data rows, only the header")
    config, record = read_checkpoint_config(folder)
    added = [ROW_COLUMN, "prediction", *(f"p_{name}" for name in record["labels"])]
    taken = next((column for column in added if column in raw.columns), None)
    if taken is not None:
        raise RecognizeError(f"--input {path}: has a column '{taken}', a name the output gives its own column "
                             f"({', '.join(added)}); rename it")
    raw = raw.iloc[_dialogue_order(raw, path)]
    # a column the model does not read (MELD's Utterance, for an audio model) is passed through as it is
    wanted = config.modalities
    given = {m for m, column in INPUT_COLUMNS.items() if column in raw.columns and m in wanted}
    rows = pd.DataFrame({
        "dialogue_id": raw["Dialogue_ID"].astype(str) if "Dialogue_ID" in raw.columns else "0",
        "speaker": raw["Speaker"].fillna("").astype(str).map(repair_text) if "Speaker" in raw.columns else "",
        "text": raw["Utterance"].fillna("").astype(str).map(repair_text) if "T" in given else "",
    }, index=raw.index)
    clip_places = {m: _clip_places(raw, INPUT_COLUMNS[m], path, mask_missing) for m in ("A", "V") if m in given}
    paths = {m: [None if _empty(cell) else path.parent / cell for cell in raw[INPUT_COLUMNS[m]]] for m in clip_places}
    places = {m: f"{path} column {INPUT_COLUMNS[m]}" for m in INPUT_COLUMNS}
    names, probabilities = _probabilities(folder, rows, paths, places, clip_places, given, has_context=False,
                                          mask_missing=mask_missing, trust_remote_code=trust_remote_code)
    out = raw.copy()
    out["prediction"] = [names[k] for k in probabilities.argmax(-1)]
    for k, name in enumerate(names):
        out[f"p_{name}"] = probabilities[:, k].round(6)
    out = out.sort_index()  # back in the file's order
    out.insert(0, ROW_COLUMN, out.index + 1)  # the index is the row's position among the data rows
    return out


def _dialogue_order(raw: pd.DataFrame, path: Path) -> np.ndarray:
    """Positions of the rows of `raw` in the order dialogue context is read in: each
    dialogue's rows together (dialogues by first appearance), by Utterance_ID where the CSV
    has that column, else in file order; as training reads MELD's splits. An empty
    Dialogue_ID is an error naming its row."""
    if "Dialogue_ID" in raw.columns:
        empty = np.flatnonzero((raw["Dialogue_ID"].fillna("").str.strip() == "").to_numpy())
        if len(empty):  # such rows would all share one dialogue, each the context of the next
            raise RecognizeError(f"{path}: row {empty[0] + 1}: Dialogue_ID is empty; give every row its dialogue, "
                                 "or leave the column out")
    dialogues = pd.factorize(raw["Dialogue_ID"])[0] if "Dialogue_ID" in raw.columns else np.zeros(len(raw), dtype=int)
    utterances = integer_column(raw, "Utterance_ID", path) if "Utterance_ID" in raw.columns else np.arange(len(raw))
    return np.lexsort((np.asarray(utterances), dialogues))


def _clip_places(raw: pd.DataFrame, column: str, path: Path, mask_missing: bool) -> dict[Path, str]:
    """Each clip named in `column` of the CSV `path` -> where an error about it points: the
    first data row (counted from 1, in the file's order) that names it. An empty cell is an
    error naming its row, unless `mask_missing`."""
    places: dict[Path, str] = {}
    for index, cell in raw[column].sort_index().items():  # the index is the row's position in the file
        place = f"{path}: row {index + 1}: column {column}"
        if _empty(cell):
            if mask_missing:
                continue
            raise RecognizeError(f"{place}: empty (--mask-missing masks the clip of such a row)")
        places.setdefault(path.parent / cell, place)
    return places


def _empty(cell: Any) -> bool:
    """Whether a CSV cell names nothing."""
    return pd.isna(cell) or not str(cell).strip()


def _probabilities(folder: "str | Path", rows: pd.DataFrame, paths: dict[str, list[Optional[Path]]],
                   places: dict[str, str], clip_places: dict[str, dict[Path, str]], given: set[str],
                   has_context: bool, mask_missing: bool, trust_remote_code: bool) -> tuple[list[str], np.ndarray]:
    """Class names and the probabilities (rows x classes) of the checkpoint in `folder`;
    `places` names each modality's input, `clip_places` each clip's, in errors. With
    `mask_missing`, audio or video the model takes and `given` lacks is masked in every row."""
    config, _ = read_checkpoint_config(folder)  # inputs are checked before the model loads
    wanted = set(config.modalities)
    kind = f"{'an' if config.modal.startswith('A') else 'a'} {config.modal} model"
    if given - wanted:
        extra = sorted(given - wanted, key="TAV".index)
        raise RecognizeError(f"{places[extra[0]]}: {folder} is {kind}; it has no "
                             f"{'text' if extra[0] == 'T' else 'audio' if extra[0] == 'A' else 'video'} encoder")
    unmasked = (wanted - given) - ({"A", "V"} if mask_missing else set())
    if unmasked:
        missing = sorted(unmasked, key="TAV".index)[0]
        hint = "" if missing == "T" else " (--mask-missing predicts without it, as eval masks a missing clip)"
        raise RecognizeError(f"{places[missing]}: required, {folder} is {kind}{hint}")
    if has_context and config.context == 0:
        raise RecognizeError(f"--context: {folder} was trained without dialogue context (--context 0)")
    for clips in clip_places.values():
        absent = next((clip for clip in clips if not clip.is_file()), None)
        if absent is not None:
            raise RecognizeError(f"{clips[absent]}: {absent}: file not found")
    config, record, built = load_trained(folder, trust_remote_code)
    text = (tokenize_rows(rows, built.tokenizer, config.context, config.max_length, config.future_context)
            if "T" in wanted else None)
    media = {m: MediaSource(paths.get(m, [None] * len(rows)), _strict(clip_reader(m, config, built), clip_places.get(m, {})))
             for m in ("A", "V") if m in wanted}
    dataset = UtteranceDataset(np.zeros(len(rows), dtype=int), text=text, media=media)
    config.workers = 0  # clips are read here, so that a bad one fails with its own one-line error
    logits = predict_loader(built.model, eval_loader(config, built, dataset), config.precision).logits
    return list(record["labels"]), torch.softmax(torch.from_numpy(logits), dim=-1).numpy()


def _strict(read: Callable[[Path], Any], places: dict[Path, str]) -> Callable[[Path], Any]:
    """`read`, with a clip that does not decode raised as an error naming its place in `places`."""
    def read_or_fail(path: Path) -> Any:
        try:
            return read(path)
        except MediaError as error:
            raise RecognizeError(f"{places[path]}: {error}") from None
    return read_or_fail
