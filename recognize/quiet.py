"""How much of Hugging Face's logging the command line and the scripts show.

transformers' loading progress bars and its info and warning messages (deprecations,
tokenizer notes, a checkpoint's unused weights) would bury the toolkit's own lines, so
they are silenced; errors still show. One warning stays: a backbone's load report when
it lists MISSING weights, weights the model folder lacks and transformers initialised at
random, which would make a run train (or `eval` score) a model other than the one named.
A report of UNEXPECTED weights alone (a pretraining head the encoder does not use, as
in facebook/wav2vec2-base) is silenced with the rest."""

import logging

from transformers.utils import logging as hf_logging

LOAD_REPORT_LOGGER = "transformers.modeling_utils"
"""The logger transformers' from_pretrained writes its load report (missing, unexpected weights) to."""


class MissingWeightsOnly(logging.Filter):
    """Passes warnings other than load reports, and a load report only when it lists
    weights the model folder lacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether `record` is shown."""
        message = record.getMessage()
        return "LOAD REPORT" not in message or "MISSING" in message


MISSING_WEIGHTS_ONLY = MissingWeightsOnly()


def quiet_hugging_face() -> None:
    """Silence transformers' progress bars and messages below errors, except a load report
    of missing weights (see the module's docstring). Calling it again changes nothing."""
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    report_logger = hf_logging.get_logger(LOAD_REPORT_LOGGER)
    report_logger.setLevel(logging.WARNING)
    if MISSING_WEIGHTS_ONLY not in report_logger.filters:
        report_logger.addFilter(MISSING_WEIGHTS_ONLY)
