"""The package as it is installed: configs in the wheel, and module boundaries kept (no private imports)."""

import ast
import os
import shutil
import subprocess
import sys
import zipfile

import pytest
from commands import REPO_ROOT, user_env

from mfnet_keras.config import list_configs

PACKAGES = ("mfnet_keras", "tfrecords_tools", "mfnet_cli")


COMMANDS = {
    "mfnet-synthetic": "mfnet_cli.synthetic",
    "mfnet-pack": "mfnet_cli.pack",
    "mfnet-inspect": "mfnet_cli.inspect",
    "mfnet-train": "mfnet_cli.train",
    "mfnet-evaluate": "mfnet_cli.evaluate",
    "mfnet-export": "mfnet_cli.export",
    "mfnet-predict": "mfnet_cli.predict",
    "mfnet-convert": "mfnet_cli.convert",
    "mfnet-profile": "mfnet_cli.profile",
    "mfnet-demo": "mfnet_cli.demo",
    "mfnet-doctor": "mfnet_cli.doctor",
    "mfnet-data-service": "mfnet_cli.data_service",
}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", *PACKAGES):
        copy = shutil.copytree if os.path.isdir(os.path.join(REPO_ROOT, name)) else shutil.copy
        copy(os.path.join(REPO_ROOT, name), source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, capture_output=True)
    (found,) = tmp_path.glob("*.whl")
    return found


def test_the_wheel_ships_the_configs_and_class_names(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"mfnet_keras/configs/{name}.yaml" for name in list_configs()} <= names
    assert len(list_configs()) == 6
    lists = {f"mfnet_keras/models/class_names/{name}.txt" for name in ("kinetics400", "ucf101", "hmdb51")}
    assert lists <= names


def test_pip_install_puts_every_command_on_path(wheel, tmp_path):
    """`pip install` into a fresh venv (the dependencies come from this environment through a `.pth`
    file: the test has no network) puts each `[project.scripts]` command on the venv's PATH."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    here = [p for p in sys.path if p.endswith("site-packages")]
    (site / "environment.pth").write_text("\n".join(here) + "\n")
    python = str(venv / "bin" / "python")
    install = [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True)
    for command, module in COMMANDS.items():
        path = venv / "bin" / command
        result = subprocess.run(
            [str(path), "--help"], env=user_env(), capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert result.returncode == 0 and result.stdout.startswith(f"usage: {command}"), (command, result.stderr)
        origin = subprocess.run(
            [python, "-c", f"import {module}; print({module}.__file__)"], capture_output=True, text=True, cwd=tmp_path
        )
        assert str(site) in origin.stdout  # the installed copy, not the checkout
    pyproject = open(os.path.join(REPO_ROOT, "pyproject.toml")).read()
    assert pyproject.count(' = "mfnet_cli.') == len(COMMANDS)


def private_imports(path):
    """`module: name` of each import of a private name or module, or of Keras's internals, in a file."""
    found = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules, names = [alias.name for alias in node.names], []
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if any(p.startswith("_") and not p.startswith("__") for p in parts) or parts[:2] == ["keras", "src"]:
                found.append(f"{path}: {module}")
        found += [f"{path}: {node.module}.{name}" for name in names if name.startswith("_") and name != "__version__"]
    return found


def test_no_module_imports_private_names():
    files = [
        os.path.join(folder, name)
        for package in PACKAGES
        for folder, _, names in os.walk(os.path.join(REPO_ROOT, package))
        for name in names
        if name.endswith(".py")
    ]
    assert len(files) > 30
    assert [found for path in files for found in private_imports(path)] == []
