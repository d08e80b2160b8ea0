"""Leaving the multi-process group (torchrun, `accelerate launch`) when a command has done its
work. A process that exits with its gloo group still alive can abort in the interpreter's
teardown ("terminate called without an active exception", SIGABRT: gloo's worker threads
still hold tensors; pytorch/pytorch#190489), and the launcher then kills the processes still
finishing, such as the main process writing the run's files. PyTorch asks that every process
destroy its group before exit; after a failure it is left alone, since destroying a group
while another process may still be in a collective can hang."""

from collections.abc import Iterator
from contextlib import contextmanager

import torch


def leave_process_group() -> None:
    """Destroy this process's default process group, if it joined one (a no-op in a single process)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


@contextmanager
def leaving_process_group_on_success() -> Iterator[None]:
    """Run the block, then leave the process group if it ended normally or with a SystemExit
    of code 0 (a Typer command's end); after an error the group is left as it is."""
    try:
        yield
    except SystemExit as exit_:
        if exit_.code in (0, None):
            leave_process_group()
        raise
    leave_process_group()
