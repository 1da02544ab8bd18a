"""The package as it is installed: configs in the wheel, and module boundaries kept (no private imports)."""

import ast
import os
import shutil
import subprocess
import sys
import zipfile

from commands import REPO_ROOT

from mfnet_keras.config import list_configs

PACKAGES = ("mfnet_keras", "tfrecords_tools")


def test_the_wheel_ships_the_configs_and_class_names(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md", *PACKAGES):
        copy = shutil.copytree if os.path.isdir(os.path.join(REPO_ROOT, name)) else shutil.copy
        copy(os.path.join(REPO_ROOT, name), source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"mfnet_keras/configs/{name}.yaml" for name in list_configs()} <= names
    assert len(list_configs()) == 5
    lists = {f"mfnet_keras/models/class_names/{name}.txt" for name in ("kinetics400", "ucf101", "hmdb51")}
    assert lists <= names


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
