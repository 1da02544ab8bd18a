"""The README is a front door: short, and every command and code line in it runs as written (each
command's options are checked against its `--help`, the Python is compiled and its imports resolved)."""

import importlib
import re
import shlex

import pytest
import tomllib
from commands import REPO_ROOT

README = open(f"{REPO_ROOT}/README.md").read()
SCRIPTS = tomllib.load(open(f"{REPO_ROOT}/pyproject.toml", "rb"))["project"]["scripts"]


def code_blocks(language):
    return re.findall(rf"```{language}\n(.*?)```", README, re.S)


def command_lines():
    """Every `mfnet-*` command line of the shell blocks and of the commands table."""
    lines = [line.split("  #")[0].strip() for block in code_blocks("sh") for line in block.splitlines()]
    table = re.findall(r"^\| `(mfnet-[^`]*)`", README, re.M)
    return [line for line in lines if line.startswith("mfnet-")] + [
        part.strip() for row in table for part in row.split("` / `")
    ]


def help_text(command, capsys):
    module, function = SCRIPTS[command].split(":")
    with pytest.raises(SystemExit) as raised:
        getattr(importlib.import_module(module), function)(["--help"])
    assert raised.value.code == 0
    return capsys.readouterr().out


def test_readme_is_short():
    assert README.count("\n") <= 250


def test_every_command_line_matches_its_help(capsys):
    lines = command_lines()
    assert len(lines) >= 15
    for line in lines:
        words = shlex.split(line)
        assert words[0] in SCRIPTS, line
        text = help_text(words[0], capsys)
        for word in words[1:]:
            if word.startswith("--"):
                assert re.search(rf"(^|[\s\[,]){re.escape(word.split('=')[0])}\b", text), (line, word)
        if words[0] == "mfnet-data-service":
            assert all(mode in text for mode in ("dispatcher", "worker"))


def test_make_targets_exist():
    makefile = open(f"{REPO_ROOT}/Makefile").read()
    for block in code_blocks("sh"):
        for target in re.findall(r"^make ([\w-]+)", block, re.M):
            assert re.search(rf"^{target}:", makefile, re.M), target


def test_python_blocks_compile_and_their_imports_resolve():
    blocks = code_blocks("python")
    assert len(blocks) == 2
    for block in blocks:
        compile(block, "README.md", "exec")
        for module, names in re.findall(r"^from ([\w.]+) import (.+)$", block, re.M):
            for name in names.split(","):
                assert hasattr(importlib.import_module(module), name.strip()), (module, name)
        for module in re.findall(r"^import ([\w.]+)", block, re.M):
            importlib.import_module(module)
