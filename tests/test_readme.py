"""The README and the docs pages stay true to the project: every `emotion-recognize` command
their bash blocks show exists (its subcommands accept --help), every script they run is
there, every relative link (and its #section) resolves, and the README stays short."""

import re
import shlex
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from recognize.cli import app

from helpers import ROOT

README = ROOT / "README.md"
README_MAX_LINES = 220
DOCUMENTS = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "datasets" / "README.md"]

FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
SEPARATORS = {";", "&&", "||", "|", "&"}
SCRIPT_RUNNERS = {"python", "python3", "torchrun", "accelerate"}


def bash_blocks(markdown: str) -> list[str]:
    """The bodies of the markdown's ```bash code blocks."""
    return [body for info, body in FENCE.findall(markdown) if info.strip() == "bash"]


def shell_commands(block: str) -> list[list[str]]:
    """The words of each command in a bash block: continued lines joined, comments dropped,
    split at ;, &&, ||, |, &. A line shlex cannot split raises ValueError."""
    commands = []
    for line in block.replace("\\\n", " ").splitlines():
        words: list[str] = []
        for word in [*shlex.split(line, comments=True), ";"]:
            if word in SEPARATORS:
                if words:
                    commands.append(words)
                words = []
            else:
                words.append(word)
    return commands


def cli_arguments(words: list[str]) -> "list[str] | None":
    """What follows the CLI's entry point in a command (`emotion-recognize`, `-m recognize`,
    `recognize/cli.py`: also under pdm run, accelerate launch, torchrun), or None if it has none."""
    for index, word in enumerate(words):
        if word in ("emotion-recognize", "recognize/cli.py"):
            return words[index + 1:]
        if word == "-m" and words[index + 1:index + 2] == ["recognize"]:
            return words[index + 2:]
    return None


def subcommand_path(arguments: list[str]) -> tuple[str, ...]:
    """The leading words of `arguments` that name (sub)commands: one word for each level at
    which the CLI has a group (`cache build`), stopping at the first option. A word naming no
    command is kept, so that its --help fails."""
    path: list[str] = []
    subcommands = get_command(app).commands  # a group's (sub)commands by name; a command has none
    for word in arguments:
        if subcommands is None or word.startswith("-"):
            break
        path.append(word)
        subcommands = getattr(subcommands.get(word), "commands", None)
    return tuple(path)


def command_problems(markdown: str) -> list[str]:
    """One line for each distinct subcommand path shown in the bash blocks whose --help the CLI refuses."""
    paths, problems = set(), []
    for block in bash_blocks(markdown):
        try:
            commands = shell_commands(block)
        except ValueError as error:
            problems.append(f"a bash block shlex cannot split ({error}): {block.strip().splitlines()[0]}")
            continue
        paths |= {subcommand_path(arguments) for arguments in map(cli_arguments, commands) if arguments is not None}
    for path in sorted(paths):
        result = CliRunner().invoke(app, [*path, "--help"])
        if result.exit_code != 0:
            reason = next((line for line in reversed(result.output.splitlines()) if line.strip()), "no output")
            problems.append(f"emotion-recognize {' '.join(path)}: --help exits {result.exit_code} ({reason.strip()})")
    return problems


def script_problems(markdown: str) -> list[str]:
    """One line for each script that a bash block runs (python/torchrun/accelerate X.py) and the repository lacks."""
    problems = []
    for block in bash_blocks(markdown):
        try:
            commands = shell_commands(block)
        except ValueError:
            continue  # command_problems names it
        for words in commands:
            if words[0] not in SCRIPT_RUNNERS:
                continue
            script = next((word for word in words[1:] if word.endswith(".py")), None)
            if script is not None and not (ROOT / script).is_file():
                problems.append(f"{' '.join(words[:2])} ...: no script {script} in the repository")
    return problems


def prose(markdown: str) -> str:
    """The markdown without its code blocks and inline code (where brackets are code, not links)."""
    return INLINE_CODE.sub("", FENCE.sub("", markdown))


def heading_anchor(heading: str) -> str:
    """The #fragment GitHub gives a heading: lower case, inline code marks and punctuation
    other than - and _ dropped, spaces as hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """The #fragments of a markdown document's headings."""
    return {heading_anchor(heading) for heading in HEADING.findall(FENCE.sub("", markdown))}


def link_problems(markdown: str, document: Path) -> list[str]:
    """One line for each relative link of `document` (whose text is `markdown`) that names no
    file of the repository, or a #section its target does not have."""
    problems = []
    for target in LINK.findall(prose(markdown)):
        if SCHEME.match(target):
            continue
        path, _, fragment = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.resolve().is_relative_to(ROOT) or not linked.exists():
            problems.append(f"link ({target}): no {path} in the repository")
            continue
        text = markdown if not path else linked.read_text(encoding="utf-8") if linked.suffix == ".md" else None
        if fragment and text is not None and fragment not in anchors(text):
            problems.append(f"link ({target}): {path or document.name} has no section #{fragment}")
    return problems


def length_problems(markdown: str, limit: int = README_MAX_LINES) -> list[str]:
    """A line if the markdown has more than `limit` lines."""
    lines = len(markdown.splitlines())
    return [f"{lines} lines, more than {limit}: move the detail to a page in docs/"] if lines > limit else []


def all_problems(markdown: str, document: Path) -> list[str]:
    """Every problem the checks above find in one document."""
    return [*command_problems(markdown), *script_problems(markdown), *link_problems(markdown, document)]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_command_script_and_link_shown_exists(document):
    assert all_problems(document.read_text(encoding="utf-8"), document) == []


def test_the_documents_show_the_cli_s_main_commands():  # the checks above pass vacuously on a page without commands
    shown = {subcommand_path(arguments) for document in DOCUMENTS for block in bash_blocks(document.read_text(encoding="utf-8"))
             for arguments in map(cli_arguments, shell_commands(block)) if arguments is not None}
    assert {("prepare",), ("train",), ("eval",), ("report",), ("predict",), ("demo",), ("cache", "build")} <= shown
    assert any(arguments is not None and arguments[:1] == ["demo"] for block in bash_blocks(README.read_text(encoding="utf-8"))
               for arguments in map(cli_arguments, shell_commands(block)))


def test_readme_is_short():
    assert length_problems(README.read_text(encoding="utf-8")) == []


BROKEN_AND_FIXED = [  # (a document with one mistake, the same fixed, what the problem must name)
    ("```bash\nemotion-recognize trian datasets/MELD --modal T\n```\n",
     "```bash\nemotion-recognize train datasets/MELD --modal T\n```\n", "emotion-recognize trian"),
    ("```bash\nemotion-recognize cache bild datasets/MELD \\\n    --modal T\n```\n",
     "```bash\nemotion-recognize cache build datasets/MELD \\\n    --modal T\n```\n", "emotion-recognize cache bild"),
    ("```bash\ntorchrun --nproc_per_node 2 recognize/cli.py evaluate CKPT\n```\n",
     "```bash\ntorchrun --nproc_per_node 2 recognize/cli.py eval CKPT\n```\n", "emotion-recognize evaluate"),
    ("```bash\nmkdir -p out && python -m recognize reprot checkpoints   # a table\n```\n",
     "```bash\nmkdir -p out && python -m recognize report checkpoints   # a table\n```\n", "emotion-recognize reprot"),
    ("```bash\npython benchmarks/text_fine_tune.py datasets/MELD MODEL\n```\n",
     "```bash\npython benchmarks/text_finetune.py datasets/MELD MODEL\n```\n", "benchmarks/text_fine_tune.py"),
    ("```bash\npython training/text_finetuning.py datasets/MELD\n```\n",
     "```bash\npython training/text_finetune.py datasets/MELD\n```\n", "training/text_finetuning.py"),
    ("See [the flags](docs/trainig.md).\n", "See [the flags](docs/training.md).\n", "docs/trainig.md"),
    ("See [GPUs](docs/training.md#several-gpu).\n", "See [GPUs](docs/training.md#several-gpus).\n", "#several-gpu"),
    ("## Set up\n\nAbove: [set up](#setup).\n", "## Set up\n\nAbove: [set up](#set-up).\n", "#setup"),
    ("Data: [linking MELD](../datasets/README.md).\n", "Data: [linking MELD](datasets/README.md).\n", "../datasets/README.md"),
]


@pytest.mark.parametrize("broken, fixed, named", BROKEN_AND_FIXED, ids=[case[2] for case in BROKEN_AND_FIXED])
def test_each_check_names_what_is_wrong_and_passes_once_fixed(broken, fixed, named):
    problems = all_problems(broken, README)
    assert len(problems) == 1 and named in problems[0], problems
    assert all_problems(fixed, README) == []


def test_code_is_not_taken_for_a_command_or_a_link():
    markdown = ("Run `emotion-recognize trian` or `FUSIONS[\"gated\"](sizes)`.\n\n"
                "```python\nFUSIONS[\"gated\"](input_sizes)  # emotion-recognize trian\n```\n"
                "```bash\nemotion-recognize train datasets/MELD   # not emotion-recognize trian\n```\n")
    assert all_problems(markdown, README) == []


def test_a_long_readme_is_named():
    assert length_problems("line\n" * README_MAX_LINES) == []
    assert length_problems("line\n" * (README_MAX_LINES + 1)) == [f"{README_MAX_LINES + 1} lines, more than {README_MAX_LINES}: "
                                                                  "move the detail to a page in docs/"]
