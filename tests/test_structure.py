"""The shape of the code: no import cycle (imports inside functions included), no function over 100 lines,
and every Examples section in a public docstring runs as written."""

import ast
import importlib
import os
import subprocess
import sys

import pytest
from commands import REPO_ROOT, user_env

PACKAGES = ("mfnet_keras", "tfrecords_tools", "mfnet_cli")
MAX_FUNCTION_LINES = 100


def modules():
    """`{module name: file path}` of every module of the packages."""
    found = {}
    for package in PACKAGES:
        for folder, _, names in os.walk(os.path.join(REPO_ROOT, package)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    module = os.path.relpath(path, REPO_ROOT)[:-3].replace(os.sep, ".")
                    found[module.removesuffix(".__init__")] = path
    return found


def imported_modules(path, module, known):
    """The package modules a file imports, wherever the import statement is (functions included)."""
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]

    def resolve(name):
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found.update(resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(resolve(full) if full in known else resolve(base))
    return found - {None, module}


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_cycle():
    known = modules()
    graph = {module: imported_modules(path, module, known) for module, path in known.items()}
    assert len(graph) > 40
    assert "mfnet_keras.models.preset_loader" in graph["mfnet_keras.models.backbone"]  # edges are seen
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]  # the check finds one


def test_in_the_layers_only_the_backend_ops_seam_asks_which_backend_runs():
    asks = ("keras.backend.backend", "default_backend", "import tensorflow", "import torch", "import jax")
    known = modules()
    layers = [m for m in known if m.startswith("mfnet_keras.layers")]
    assert "mfnet_keras.layers.backend_ops.torch_ops" in layers and "mfnet_keras.layers.fiber_conv" in layers
    found = [
        (module, ask)
        for module in layers
        if not module.startswith("mfnet_keras.layers.backend_ops")
        for ask in asks
        if ask in open(known[module]).read()
    ]
    assert found == []


def test_the_data_package_imports_no_model_code():
    known = modules()
    for module, path in known.items():
        if module.startswith("mfnet_keras.data"):
            imported = imported_modules(path, module, known)
            assert not [m for m in imported if m.startswith(("mfnet_keras.models", "mfnet_keras.layers"))], module


def test_no_function_is_over_100_lines():
    long = []
    for path in modules().values():
        for node in ast.walk(ast.parse(open(path).read())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{os.path.relpath(path, REPO_ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def modules_with_examples():
    return sorted(m for m, path in modules().items() if ">>> " in open(path).read())


def test_public_api_has_examples():
    documented = modules_with_examples()
    for module in (
        "mfnet_keras",
        "mfnet_keras.models.video_classifier",
        "mfnet_keras.models.backbone",
        "mfnet_keras.data.datasets",
        "mfnet_keras.layers.fiber_conv",
        "mfnet_keras.profiling",
    ):
        assert module in documented


def test_docstring_examples_run():
    """Every `>>>` example of the packages, run by doctest in one fresh process (examples register presets)."""
    script = (
        "import doctest, importlib, sys\n"
        "failed = 0\n"
        f"for name in {modules_with_examples()!r}:\n"
        "    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)\n"
        "    failed += result.failed\n"
        "    print(name, result, flush=True)\n"
        "sys.exit(1 if failed else 0)\n"
    )
    env = {**user_env(), "KERAS_HOME": os.path.join(REPO_ROOT, ".pytest_cache", "keras_home_doctest")}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "attempted=0" not in result.stdout


@pytest.mark.parametrize(
    "module", ["mfnet_keras", "mfnet_keras.models", "mfnet_keras.data", "tfrecords_tools", "mfnet_cli"]
)
def test_packages_import_alone(module):
    assert importlib.import_module(module) is not None


def test_the_architecture_page_lists_the_import_graph():
    result = subprocess.run(
        [sys.executable, os.path.join(REPO_ROOT, "docs", "architecture_diagram.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
