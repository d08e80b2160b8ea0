"""Work that only the main process does (writing a run's files, building a cache entry),
with its outcome shared so that every process stops together when it fails.

Several processes meet at collectives (a gradient all-reduce, a barrier). Had the main
process alone failed to write (a read-only or full disk), it would stop, and the others
would wait at their next collective for a process that is gone: until a timeout or a
launcher kills them, or with a torch.distributed traceback instead of the error.
"""

from typing import Callable, Protocol, TypeVar

from accelerate.utils import broadcast_object_list

from recognize.errors import RecognizeError, first_line

Result = TypeVar("Result")


class Processes(Protocol):
    """What `on_main_process` needs of accelerate's PartialState or Accelerator."""

    is_main_process: bool
    num_processes: int


def on_main_process(processes: Processes, work: Callable[[], Result]) -> "Result | None":
    """Run `work` on the main process only and return its result there (None elsewhere);
    every process waits for it (this is the barrier after such work). When it fails, every
    process raises a RecognizeError with the same line: the main process's own error, an
    OSError (a file it could not write) in one line naming its path, or for another
    exception its type and first line (the main process then raises that exception itself)."""
    result, failure, raised = None, None, None
    if processes.is_main_process:
        try:
            result = work()
        except RecognizeError as error:
            failure = str(error)
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            failure = f"{where}cannot write ({error.strerror or first_line(error)})"
        except Exception as error:  # a bug: the others stop with its name, the main process with its traceback
            failure, raised = f"the main process failed ({type(error).__name__}: {first_line(error)})", error
    if processes.num_processes > 1:
        shared = broadcast_object_list([failure])
        failure = shared[0]
    if raised is not None:
        raise raised
    if failure is not None:
        raise RecognizeError(failure)
    return result
