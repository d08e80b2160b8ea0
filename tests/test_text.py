"""Text input (`recognize.dataset.text`): dialogue contexts, tokenisation with a tiny BERT
(context truncated from its oldest end, the target utterance kept whole while it fits),
and dynamic padding."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer

from recognize.dataset.text import (
    dialogue_contexts,
    dialogue_futures,
    pad_text,
    speaker_line,
    tokenize_rows,
)
from recognize.tiny import write_tiny_bert


def dialogue_rows(*utterances: tuple[int, str, str]) -> pd.DataFrame:
    """Rows as `load_split` returns them, from (dialogue_id, speaker, text) in dialogue order."""
    frame = pd.DataFrame(utterances, columns=["dialogue_id", "speaker", "text"])
    frame.insert(1, "utterance_id", frame.groupby("dialogue_id").cumcount() * 2)  # gapped ids, as in MELD
    return frame


ROWS = dialogue_rows(
    (1, "Ann", "a b c"), (1, "Bob", "d e f"), (1, "Ann", "g"),
    (4, "Bob", "h i"), (4, "Ann", ""), (4, "Bob", "j"),
)
LONG_TARGET = dialogue_rows((7, "Ann", "a b"), (7, "Bob", "c d e f g h i j"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    """The tokenizer of a tiny BERT whose vocabulary holds every word of the rows above."""
    folder = write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), [*"abcdefghij", "ann", "bob", ":"], hidden=8, layers=1)
    return AutoTokenizer.from_pretrained(folder)


def tokens(tokenizer, encodings: list[dict[str, list[int]]]) -> list[list[str]]:
    """Each encoding's input ids as token strings."""
    return [tokenizer.convert_ids_to_tokens(e["input_ids"]) for e in encodings]


def words(text: str) -> list[str]:
    """The tiny BERT's tokens of `text` (lower-cased, ':' split off)."""
    return text.lower().replace(":", " :").split()


def test_speaker_line() -> None:
    assert speaker_line("Ann", "a b") == "Ann: a b"
    assert speaker_line("", "a b") == "a b"


@pytest.mark.parametrize(("size", "expected"), [
    (0, ["", "", "", "", "", ""]),
    (1, ["", "Ann: a b c", "Bob: d e f", "", "Bob: h i", "Ann: "]),
    (2, ["", "Ann: a b c", "Ann: a b c Bob: d e f", "", "Bob: h i", "Bob: h i Ann: "]),
    (9, ["", "Ann: a b c", "Ann: a b c Bob: d e f", "", "Bob: h i", "Bob: h i Ann: "]),
])
def test_dialogue_contexts(size: int, expected: list[str]) -> None:
    assert dialogue_contexts(ROWS, size) == expected


def test_context_zero_is_the_utterance_alone(tokenizer) -> None:
    encodings = tokenize_rows(ROWS, tokenizer, context=0, max_length=64)

    assert tokens(tokenizer, encodings) == [["[CLS]", *words(t), "[SEP]"] for t in ROWS["text"]]
    assert all(e["token_type_ids"] == [0] * len(e["input_ids"]) for e in encodings)


def test_context_is_the_first_segment(tokenizer) -> None:
    encodings = tokenize_rows(ROWS, tokenizer, context=2, max_length=64)

    assert tokens(tokenizer, encodings)[:3] == [
        ["[CLS]", "ann", ":", "a", "b", "c", "[SEP]"],
        ["[CLS]", "ann", ":", "a", "b", "c", "[SEP]", "bob", ":", "d", "e", "f", "[SEP]"],
        ["[CLS]", "ann", ":", "a", "b", "c", "bob", ":", "d", "e", "f", "[SEP]", "ann", ":", "g", "[SEP]"],
    ]
    assert encodings[2]["token_type_ids"] == [0] * 12 + [1] * 4
    assert tokens(tokenizer, encodings)[5] == ["[CLS]", "bob", ":", "h", "i", "ann", ":", "[SEP]", "bob", ":", "j", "[SEP]"]


def test_small_budget_drops_the_oldest_context_tokens(tokenizer) -> None:
    encodings = tokenize_rows(ROWS, tokenizer, context=2, max_length=10)

    assert tokens(tokenizer, encodings)[2] == ["[CLS]", ":", "d", "e", "f", "[SEP]", "ann", ":", "g", "[SEP]"]
    assert encodings[2]["token_type_ids"] == [0] * 6 + [1] * 4


@pytest.mark.parametrize("max_length", range(7, 19))
def test_target_complete_and_context_cut_from_its_oldest_end(tokenizer, max_length: int) -> None:
    encodings = tokenize_rows(ROWS, tokenizer, context=2, max_length=max_length)

    for encoding, context, speaker, text in zip(encodings, dialogue_contexts(ROWS, 2), ROWS["speaker"], ROWS["text"]):
        target, history = words(speaker_line(speaker, text)), words(context)
        kept = max(0, min(len(history), max_length - len(target) - 3))  # 3 = [CLS], [SEP], [SEP]
        expected = ["[CLS]", *history[len(history) - kept:], "[SEP]"] if kept else ["[CLS]"]
        assert tokenizer.convert_ids_to_tokens(encoding["input_ids"]) == [*expected, *target, "[SEP]"]


@pytest.mark.parametrize(("context", "expected"), [
    (0, ["[CLS]", "c", "d", "e", "f", "[SEP]"]),
    (1, ["[CLS]", "bob", ":", "c", "d", "[SEP]"]),
])
def test_target_longer_than_the_budget_is_truncated(tokenizer, context: int, expected: list[str]) -> None:
    encodings = tokenize_rows(LONG_TARGET, tokenizer, context=context, max_length=6)

    assert tokens(tokenizer, encodings)[1] == expected
    assert tokenizer.truncation_side == "right"  # restored after the left-truncated pairs


def test_dialogue_futures_are_the_next_utterances_of_the_same_dialogue() -> None:
    assert dialogue_futures(ROWS, 1) == [["Bob: d e f"], ["Ann: g"], [], ["Ann: "], ["Bob: j"], []]
    assert dialogue_futures(ROWS, 3) == [["Bob: d e f", "Ann: g"], ["Ann: g"], [], ["Ann: ", "Bob: j"], ["Bob: j"], []]
    assert dialogue_futures(ROWS, 0) == [[]] * 6


def test_future_utterances_follow_the_target_behind_the_separator(tokenizer) -> None:
    encodings = tokenize_rows(ROWS, tokenizer, context=1, max_length=64, future=2)

    assert tokens(tokenizer, encodings)[:3] == [
        ["[CLS]", "ann", ":", "a", "b", "c", "[SEP]", "bob", ":", "d", "e", "f", "ann", ":", "g", "[SEP]"],
        ["[CLS]", "ann", ":", "a", "b", "c", "[SEP]", "bob", ":", "d", "e", "f", "[SEP]", "ann", ":", "g", "[SEP]"],
        ["[CLS]", "bob", ":", "d", "e", "f", "[SEP]", "ann", ":", "g", "[SEP]"],
    ]
    assert encodings[1]["token_type_ids"] == [0] * 7 + [1] * 10  # the next utterances are in the target's segment
    only_future = tokenize_rows(ROWS, tokenizer, context=0, max_length=64, future=1)
    assert tokens(tokenizer, only_future)[3] == ["[CLS]", "bob", ":", "h", "i", "[SEP]", "ann", ":", "[SEP]"]


@pytest.mark.parametrize("max_length", range(8, 24))
def test_future_utterances_are_whole_and_leave_the_past_half_the_room(tokenizer, max_length: int) -> None:
    encodings = tokenize_rows(ROWS, tokenizer, context=2, max_length=max_length, future=2)
    for encoding, context, future, speaker, text in zip(encodings, dialogue_contexts(ROWS, 2), dialogue_futures(ROWS, 2),
                                                        ROWS["speaker"], ROWS["text"]):
        target, past = words(speaker_line(speaker, text)), words(context)
        left = max_length - 3 - len(target)  # 3 = [CLS], [SEP], [SEP]
        allowed = max(left - len(past), left // 2)
        kept: list[str] = []
        for line in future:  # whole utterances, nearest first, behind one [SEP]
            more = [*(kept or ["[SEP]"]), *words(line)]
            if len(more) > allowed:
                break
            kept = more
        room = max(0, min(len(past), max_length - 3 - len(target) - len(kept)))
        head = ["[CLS]", *past[len(past) - room:], "[SEP]"] if room else ["[CLS]"]
        assert tokens(tokenizer, [encoding])[0] == [*head, *target, *kept, "[SEP]"]
        assert len(encoding["input_ids"]) <= max_length


def test_pad_text_pads_to_the_longest() -> None:
    encodings = [
        {"input_ids": [2, 5, 3], "token_type_ids": [0, 0, 0]},
        {"input_ids": [2, 3], "token_type_ids": [0, 0]},
        {"input_ids": [2, 5, 3, 6, 3], "token_type_ids": [0, 0, 0, 1, 1]},
    ]
    batch = pad_text(encodings, pad_token_id=0, multiple=1)

    assert set(batch) == {"input_ids", "token_type_ids", "attention_mask"}
    assert torch.equal(batch["input_ids"], torch.tensor([[2, 5, 3, 0, 0], [2, 3, 0, 0, 0], [2, 5, 3, 6, 3]]))
    assert torch.equal(batch["token_type_ids"], torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 1, 1]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]))
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == torch.int64


def test_pad_text_without_token_types() -> None:
    batch = pad_text([{"input_ids": [0, 7, 2]}, {"input_ids": [0, 2]}], pad_token_id=1, multiple=1)

    assert set(batch) == {"input_ids", "attention_mask"}
    assert torch.equal(batch["input_ids"], torch.tensor([[0, 7, 2], [0, 2, 1]]))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1], [1, 1, 0]]))


def test_pad_text_rounds_the_width_up_to_a_multiple() -> None:
    encodings = [{"input_ids": [0, 7, 2], "token_type_ids": [0, 0, 0]}, {"input_ids": [0, 2], "token_type_ids": [0, 0]}]
    batch = pad_text(encodings, pad_token_id=1, multiple=4)

    assert torch.equal(batch["input_ids"], torch.tensor([[0, 7, 2, 1], [0, 2, 1, 1]]))
    assert torch.equal(batch["token_type_ids"], torch.zeros(2, 4, dtype=torch.int64))
    assert torch.equal(batch["attention_mask"], torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]))
    assert pad_text(encodings, pad_token_id=1, multiple=3)["input_ids"].shape == (2, 3)  # already a multiple
    assert pad_text(encodings, pad_token_id=1)["input_ids"].shape[1] == (8 if torch.cuda.is_available() else 3)


def test_tiny_bert_folder_loads_by_path(tmp_path: Path) -> None:
    folder = write_tiny_bert(tmp_path / "bert", ["Hello", "hello", "world"], hidden=8, layers=1)
    tokenizer = AutoTokenizer.from_pretrained(str(folder))

    assert tokenizer("hello world")["input_ids"] == [2, 5, 6, 3]  # specials first, duplicates merged
