"""The one exception type that the CLI turns into a one-line message and a non-zero exit."""


class RecognizeError(Exception):
    """A problem with the user's input (data, flags, model, checkpoint), described in one line."""
