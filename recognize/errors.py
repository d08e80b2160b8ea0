"""The exception types that the CLI turns into a one-line message and a non-zero exit, and
the one-line wording of load failures shared by the text, audio and video paths."""

from pathlib import Path


class RecognizeError(Exception):
    """A problem with the user's input (data, flags, model, checkpoint), described in one line."""


class MediaError(RecognizeError):
    """A media clip (audio or video) that is missing or cannot be decoded."""


def first_line(error: Exception) -> str:
    """The first line of an exception's message (libsndfile's `error_string` or an OS error's
    `strerror` when present, as they do not repeat the path), or its class name when empty."""
    text = (getattr(error, "error_string", None) or getattr(error, "strerror", None) or str(error)).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_failure(what: str, model_id: str, error: Exception, flag: str) -> str:
    """One line on why `what` (e.g. "model", "feature extractor") of `model_id` did not load:
    the error of a local folder, or, for a hub id, that it is not cached and which flag takes a folder."""
    if Path(model_id).exists():
        return f"cannot load the {what} from folder '{model_id}': {first_line(error)}"
    return (
        f"cannot load the {what} of '{model_id}': it is not a local folder and not in the Hugging Face cache "
        f"(offline or unreachable hub); pass a local folder path, e.g. {flag} /path/to/{Path(model_id).name}"
    )
