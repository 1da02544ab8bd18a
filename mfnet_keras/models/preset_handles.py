"""Preset handles resolved to local files: registered names, folders, `.pth` files, URLs (downloaded once into
the Keras cache, archives extracted safely) and `hf://` / `kaggle://` hub folders.

A handle for `from_preset` is one of:
- a registered name (`list_presets()`);
- a preset folder (`config.json`, `model.weights.h5`, and for a classifier
  `task.json`, `task.weights.h5`, `preprocessor.json`), keras-hub's layout;
- a released PyTorch checkpoint `.pth` (recognised by its file name);
- an `http(s)://` URL of a `.pth` or of a preset folder archived as `.tar.gz`,
  `.tgz` or `.zip`, downloaded once into the Keras cache (`sha256=` verifies it);
- `hf://OWNER/NAME` (needs `huggingface_hub`) or `kaggle://OWNER/MODEL/keras/VARIANT`
  (needs `kagglehub`).
"""

import hashlib
import importlib
import os
import urllib.parse

from mfnet_keras import downloads
from mfnet_keras.downloads import ARCHIVES
from mfnet_keras.files import sha256_of
from mfnet_keras.models.preset_checks import PRESET_FILES, PRESET_PATTERNS, PresetError
from mfnet_keras.models.preset_registry import get_preset

CACHE_SUBDIR = "mfnet_keras"


def cache_dir():
    """Where downloads and converted presets are kept: `$KERAS_HOME/mfnet_keras` (default `~/.keras`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, CACHE_SUBDIR)


def download(url, sha256=None):
    """The cached copy of `url`, downloaded once (see `mfnet_keras.downloads.download`: size limit,
    `sha256`, nothing kept from a failed or refused download).

    Args:
        url: an `http://` or `https://` address.
        sha256: the file's expected SHA-256 (None: not checked).
    """
    name = os.path.basename(urllib.parse.urlparse(url).path) or hashlib.sha256(url.encode()).hexdigest()[:16]
    target = os.path.join(cache_dir(), name)
    if os.path.exists(target) and (sha256 is None or sha256_of(target) == sha256.lower()):
        return target
    os.makedirs(cache_dir(), exist_ok=True)
    try:
        return downloads.download(url, target, sha256)
    except downloads.DownloadError as error:
        raise PresetError(str(error)) from None


def extract(archive, url):
    """The preset folder inside a downloaded archive, extracted once beside it, safely
    (`mfnet_keras.downloads.extract_archive`); a refused archive is removed from the cache.

    Args:
        archive: the downloaded archive.
        url: where it came from, named in errors.
    """
    folder = archive + ".preset"
    if not os.path.isdir(folder) or os.path.exists(os.path.join(folder, ".complete")):  # .complete: unchecked, old
        try:
            downloads.extract_archive(archive, folder, label=url)
        except downloads.DownloadError as error:
            os.remove(archive)
            raise PresetError(str(error)) from None
    for root, _, files in os.walk(folder):
        if "config.json" in files:
            return root
    raise PresetError(f"{url}: the archive holds no config.json (not a preset folder)")


def hub_folder(handle):
    """The local folder of an `hf://` or `kaggle://` handle: its preset files only, fetched by the hub's client.

    Args:
        handle: an `hf://OWNER/NAME` or `kaggle://OWNER/MODEL/keras/VARIANT` handle.
    """
    scheme, rest = handle.split("://", 1)
    package = {"hf": "huggingface_hub", "kaggle": "kagglehub"}[scheme]
    try:
        module = importlib.import_module(package)
    except ImportError as error:
        raise PresetError(f"{handle}: {scheme}:// presets need {package}: pip install {package}") from error
    try:
        if scheme == "hf":
            return module.snapshot_download(repo_id=rest, allow_patterns=list(PRESET_PATTERNS))
        return _kaggle_files(module, rest)
    except Exception as error:
        raise PresetError(
            f"{handle}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from error


def _kaggle_files(kagglehub, handle):
    """Fetches a Kaggle model variant's preset files one by one (`config.json` required, the others if there)."""
    folder = os.path.dirname(kagglehub.model_download(handle, path="config.json"))
    for name in (*PRESET_FILES[1:], "README.md"):
        try:
            kagglehub.model_download(handle, path=name)
        except Exception:  # the file is not in this variant; kagglehub's error types vary by version
            continue
    return folder


def resolve(handle, sha256=None):
    """`("folder", path)`, `("pth", path)` or `("registered", name)` for a handle (see the module doc).

    Args:
        handle: a registered name, a folder, a `.pth` file, a URL or a hub handle.
        sha256: the download's expected SHA-256, for a URL.
    """
    handle = os.fspath(handle)
    if handle.startswith(("http://", "https://")):
        if not handle.endswith((".pth", *ARCHIVES)):
            raise PresetError(f"{handle}: a URL must end in .pth or {', '.join(ARCHIVES)}")
        path = download(handle, sha256)
        return ("pth", path) if handle.endswith(".pth") else ("folder", extract(path, handle))
    if handle.startswith(("hf://", "kaggle://")):
        return "folder", hub_folder(handle)
    if os.path.isdir(handle):
        if not os.path.exists(os.path.join(handle, "config.json")):
            raise PresetError(f"{handle}: not a preset folder (no config.json)")
        return "folder", handle
    if handle.endswith(".pth"):
        if not os.path.exists(handle):
            raise PresetError(f"{handle}: no such checkpoint file")
        return "pth", handle
    get_preset(handle)  # an unknown name is a PresetError
    return "registered", handle
