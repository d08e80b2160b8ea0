"""emotion-recognize: multimodal emotion recognition on MELD."""

__version__ = "0.1.0"

from recognize.config import ExperimentConfig  # noqa: E402
from recognize.errors import RecognizeError  # noqa: E402
from recognize.evaluator import evaluate  # noqa: E402
from recognize.run import train  # noqa: E402

__all__ = ["ExperimentConfig", "RecognizeError", "evaluate", "train", "__version__"]
