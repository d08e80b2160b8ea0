"""A command that succeeds leaves its process group (else gloo can abort the process at exit,
and the launcher kills the others); one that fails leaves it as it is. On a real gloo group of
one process."""

import sys
from contextlib import nullcontext

import pytest
import torch.distributed as dist

from recognize.cli import main
from recognize.errors import RecognizeError
from recognize.process_group import leaving_process_group_on_success
from recognize.scripting import run_script


@pytest.fixture()
def group():
    """A gloo process group of this process alone, destroyed afterwards if still there."""
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.parametrize("ending, left", [(None, True), (SystemExit(0), True), (SystemExit(None), True),
                                          (SystemExit(1), False), (ValueError("bug"), False)])
def test_the_group_is_left_after_a_normal_end_only(group, ending, left):
    with pytest.raises(type(ending)) if ending is not None else nullcontext():
        with leaving_process_group_on_success():
            if ending is not None:
                raise ending
    assert dist.is_initialized() is not left


def test_the_console_script_leaves_the_group_when_the_command_succeeded(group, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["emotion-recognize", "report", str(tmp_path)])  # no runs: exit code 1
    with pytest.raises(SystemExit) as failed:
        main()
    assert failed.value.code == 1 and dist.is_initialized()
    monkeypatch.setattr(sys, "argv", ["emotion-recognize", "report", "--help"])
    with pytest.raises(SystemExit) as succeeded:
        main()
    assert succeeded.value.code == 0 and not dist.is_initialized()


def test_a_script_leaves_the_group_when_its_main_returned(group):
    def failing(argv: list[str]) -> None:
        raise RecognizeError("bad input")
    with pytest.raises(SystemExit):
        run_script(failing, [])
    assert dist.is_initialized()
    run_script(lambda argv: None, [])
    assert not dist.is_initialized()

