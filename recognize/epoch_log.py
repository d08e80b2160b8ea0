"""Where each epoch's row (the line history.csv gets) is also logged: `--log tensorboard`
writes TensorBoard event files under the run's `tensorboard/` (the optional `tensorboard`
extra), one scalar per number in the row, stepped by epoch."""

from pathlib import Path
from typing import Any, Optional

from recognize.errors import RecognizeError

TENSORBOARD_FOLDER = "tensorboard"


def check_log(kind: str) -> None:
    """RecognizeError when `--log kind` cannot work here (its package missing)."""
    if kind == "tensorboard":
        try:
            from torch.utils.tensorboard import SummaryWriter  # noqa: F401
        except ImportError:
            raise RecognizeError("--log tensorboard: the tensorboard package is not installed "
                                 "(pip install 'emotion-recognize[tensorboard]')") from None


class EpochLog:
    """Receives each epoch's row; `close` when training ends."""

    def __init__(self, kind: str, run_dir: Path) -> None:
        self.writer: Optional[Any] = None
        if kind == "tensorboard":
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_FOLDER))

    def __call__(self, row: dict[str, Any]) -> None:
        """Log one epoch's `row` of history.csv (nothing when logging is off)."""
        if self.writer is not None:
            for name, value in row.items():
                if name != "epoch" and isinstance(value, (int, float)):
                    self.writer.add_scalar(name, value, global_step=row["epoch"])
            self.writer.flush()

    def close(self) -> None:
        """Flush and close the event files."""
        if self.writer is not None:
            self.writer.close()
