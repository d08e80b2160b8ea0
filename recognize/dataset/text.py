"""Text input: the target utterance, optionally after the N previous utterances of its
dialogue ("Speaker: text" each) and before the M next ones, tokenised once; the context is
truncated from its oldest end, the target utterance only when it alone exceeds the token
budget.

With next utterances (EmoBERTa, Kim and Vossen, 2021: past, current and future utterances
with speaker names), the second segment is the target, the tokenizer's separator token and
the next utterances, nearest first: `[CLS] past [SEP] Speaker: target [SEP] next [SEP]` for
BERT, `<s> past </s></s> Speaker: target </s> next </s>` for RoBERTa and MPNet. The next
utterances are kept whole, as many as fit into half of what the target leaves of the budget
(all of it when the past needs less), so that the past keeps room."""

import pandas as pd
import torch

from recognize.errors import RecognizeError

TextEncoding = dict[str, list[int]]


def speaker_line(speaker: str, text: str) -> str:
    """One utterance as it appears in a context: "Speaker: text"."""
    return f"{speaker}: {text}" if speaker else text


def dialogue_contexts(rows: pd.DataFrame, size: int) -> list[str]:
    """For each row, the `size` utterances before it in its dialogue, oldest first, one string.

    `rows` must be in dialogue order (as `load_split` returns them); rows of other dialogues
    never leak into a context.
    """
    contexts: list[str] = []
    history: list[str] = []
    previous_dialogue = None
    for dialogue, speaker, text in zip(rows["dialogue_id"], rows["speaker"], rows["text"]):
        if dialogue != previous_dialogue:
            history, previous_dialogue = [], dialogue
        contexts.append(" ".join(history[-size:]) if size else "")
        history.append(speaker_line(speaker, text))
    return contexts


def dialogue_futures(rows: pd.DataFrame, size: int) -> list[list[str]]:
    """For each row, the `size` utterances after it in its dialogue ("Speaker: text" each),
    nearest first; `rows` in dialogue order, as for `dialogue_contexts`."""
    lines = [speaker_line(s, t) for s, t in zip(rows["speaker"], rows["text"])]
    dialogues = rows["dialogue_id"].tolist()
    futures = []
    for i, dialogue in enumerate(dialogues):
        end = i + 1
        while end < len(lines) and end - i <= size and dialogues[end] == dialogue:
            end += 1
        futures.append(lines[i + 1:end])
    return futures


def tokenize_rows(rows: pd.DataFrame, tokenizer, context: int, max_length: int, future: int = 0) -> list[TextEncoding]:
    """Tokenise every row: the utterance alone (context and future 0), or the `context`
    previous utterances as the first segment and "Speaker: utterance" (followed by up to
    `future` next utterances) as the second; special tokens added, no padding."""
    if context == 0 and future == 0:
        targets = rows["text"].tolist()
        return _encode(tokenizer, targets, None, max_length)
    targets = [speaker_line(s, t) for s, t in zip(rows["speaker"], rows["text"])]
    contexts = dialogue_contexts(rows, context)
    pair_overhead = tokenizer.num_special_tokens_to_add(pair=True)
    # a tokenizer without a pair template (GPT-2, Qwen2) joins the two segments with nothing between them
    # ("...wowRachel: ..."): a space parts them as it parts the context's own utterances
    separator = " " if pair_overhead == tokenizer.num_special_tokens_to_add(pair=False) else ""
    if future:
        targets = _with_futures(tokenizer, targets, contexts, dialogue_futures(rows, future), max_length - pair_overhead)
    second = [separator + target for target in targets]
    target_lengths = [len(ids) for ids in tokenizer(second, add_special_tokens=False)["input_ids"]]
    # a pair needs at least one context token; rows whose target fills the budget go alone
    fits = [bool(c) and n + pair_overhead < max_length for c, n in zip(contexts, target_lengths)]
    paired = [i for i, ok in enumerate(fits) if ok]
    alone = [i for i, ok in enumerate(fits) if not ok]
    encodings: list[TextEncoding] = [{} for _ in targets]
    for i, encoding in zip(paired, _encode(tokenizer, [contexts[i] for i in paired], [second[i] for i in paired], max_length)):
        encodings[i] = encoding
    for i, encoding in zip(alone, _encode(tokenizer, [targets[i] for i in alone], None, max_length)):
        encodings[i] = encoding
    return encodings


def _with_futures(tokenizer, targets: list[str], contexts: list[str], futures: list[list[str]], budget: int) -> list[str]:
    """Each target followed by the tokenizer's separator and as many of its next utterances
    (whole, nearest first) as fit into the tokens the target leaves of `budget`: all of them
    when the row's past needs less than the rest, else half of them."""
    if not targets:
        return targets
    mark = f" {tokenizer.sep_token} " if tokenizer.sep_token else " "
    candidates = [[target + (mark + " ".join(lines[:k]) if k else "") for k in range(len(lines) + 1)]
                  for target, lines in zip(targets, futures)]
    flat = [text for options in candidates for text in options]
    lengths = iter(len(ids) for ids in tokenizer(flat, add_special_tokens=False)["input_ids"]) if flat else iter(())
    past_lengths = [len(ids) for ids in tokenizer(contexts, add_special_tokens=False)["input_ids"]]
    chosen = []
    for options, past in zip(candidates, past_lengths):
        sizes = [next(lengths) for _ in options]
        left = budget - sizes[0]
        allowed = sizes[0] + max(left - past, left // 2)
        chosen.append(options[max(k for k, size in enumerate(sizes) if k == 0 or size <= allowed)])
    return chosen


GPU_PAD_MULTIPLE = 8
"""On a GPU, batch widths are rounded up to a multiple of this. Each new width brings new
matrix shapes, and an H100 ran the first epoch (every width new) at 478 samples/s, the
next ones at 1,075-1,184; MELD's epoch has 40 distinct widths, 10 when rounded. The padded
positions are masked: the outputs do not change (bit for bit on a CPU, checked with
MiniLM). On a CPU, where the extra positions are only extra work, no rounding."""


def pad_text(encodings: list[TextEncoding], pad_token_id: int, multiple: "int | None" = None) -> dict[str, torch.Tensor]:
    """Pad a batch of encodings to its longest member (dynamic padding), rounded up to a
    multiple of `multiple` tokens (default: GPU_PAD_MULTIPLE on a machine with a GPU, else 1)."""
    if multiple is None:
        multiple = GPU_PAD_MULTIPLE if torch.cuda.is_available() else 1
    width = -(-max(len(e["input_ids"]) for e in encodings) // multiple) * multiple
    keys = [k for k in ("input_ids", "token_type_ids") if k in encodings[0]]
    fill = {"input_ids": pad_token_id, "token_type_ids": 0}
    batch = {k: torch.tensor([e[k] + [fill[k]] * (width - len(e[k])) for e in encodings]) for k in keys}
    batch["attention_mask"] = torch.tensor([[1] * len(e["input_ids"]) + [0] * (width - len(e["input_ids"])) for e in encodings])
    return batch


def _encode(tokenizer, first: list[str], second: "list[str] | None", max_length: int) -> list[TextEncoding]:
    """Tokenise `first` (paired with `second` when given, truncating only `first` from the left)."""
    if not first:
        return []
    keys = ("input_ids", "token_type_ids")
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left" if second is not None else "right"
    try:
        out = tokenizer(first, second, truncation="only_first" if second is not None else True, max_length=max_length)
    except Exception as error:  # the tokenizers library raises plain Exception on truncation
        raise RecognizeError(f"tokenizer failed: {error}") from None
    finally:
        tokenizer.truncation_side = side
    return [{k: out[k][i] for k in keys if k in out} for i in range(len(first))]
