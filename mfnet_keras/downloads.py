"""Fetching and unpacking files from people you do not know, with limits.

`download` fetches a URL into a cache file: the bytes go to `.partial/` and are
moved into place only when complete, within `max_bytes` and matching `sha256`.
`extract_archive` unpacks a `.tar.gz`, `.tgz` or `.zip` only when every member
is a plain file or folder under the target (no absolute paths, no `..`, no
links, devices or FIFOs: the rules of `tarfile`'s `"data"` filter, applied to
zip too) and the members fit in `max_bytes`; it checks every member before it
writes anything, counts the bytes as it writes them, and leaves either the
whole folder or nothing.

The limits default to `DEFAULT_MAX_BYTES` (4 GiB) and are read from the
environment variables `MFNET_KERAS_MAX_DOWNLOAD_BYTES` and
`MFNET_KERAS_MAX_EXTRACT_BYTES` when set; an explicit `max_bytes` wins.
"""

import os
import re
import shutil
import stat
import tarfile
import urllib.error
import urllib.request
import zipfile
import zlib

from tqdm.auto import tqdm

from mfnet_keras.errors import MFNetError
from mfnet_keras.files import PARTIAL, remove_empty_partial, replacing, sha256_of

DEFAULT_MAX_BYTES = 4 << 30
DOWNLOAD_LIMIT_VARIABLE = "MFNET_KERAS_MAX_DOWNLOAD_BYTES"
EXTRACT_LIMIT_VARIABLE = "MFNET_KERAS_MAX_EXTRACT_BYTES"
ARCHIVES = (".tar.gz", ".tgz", ".zip")
_CHUNK = 1 << 20


class DownloadError(MFNetError, ValueError):
    """A download or archive that was refused or failed: one line saying why; nothing was kept."""


def limit(variable, max_bytes=None):
    """`max_bytes` if given, else the environment variable's value, else `DEFAULT_MAX_BYTES`.

    Args:
        variable: the environment variable that may set the limit.
        max_bytes: the limit given by the caller (None: not given).

    Examples:
    >>> limit(EXTRACT_LIMIT_VARIABLE, max_bytes=1000)
    1000
    """
    if max_bytes is not None:
        return int(max_bytes)
    value = os.environ.get(variable)
    if value is None or not value.strip():
        return DEFAULT_MAX_BYTES
    try:
        return int(value)
    except ValueError:
        raise DownloadError(f"{variable} must be a number of bytes. Received: {value!r}") from None


def download(url, target, sha256=None, max_bytes=None, progress=True):
    """Downloads `url` to the file `target` (replacing it only when the download is complete).

    Refused in one `DownloadError` line, with nothing kept: an HTTP error, a
    refused connection, a `Content-Length` over the limit, more bytes arriving
    than the limit (counted as they arrive), a `sha256` that does not match.

    Args:
        url: an `http://` or `https://` address.
        target: the file to write.
        sha256: the expected SHA-256 of the bytes (None: not checked).
        max_bytes: the size limit (default: `limit(DOWNLOAD_LIMIT_VARIABLE)`).
        progress: show a progress bar on a terminal.

    Examples:
    >>> download("http://127.0.0.1:1/x.pth", "/tmp/x.pth")  # doctest: +SKIP
    """
    most = limit(DOWNLOAD_LIMIT_VARIABLE, max_bytes)
    over = f"cannot download {url}: it is larger than the limit of {most} bytes (set {DOWNLOAD_LIMIT_VARIABLE} to raise it)"
    request = urllib.request.Request(url, headers={"User-Agent": "mfnet-keras"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response, replacing(target) as tmp:
            declared = response.headers.get("Content-Length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > most:
                raise DownloadError(over)
            received = 0
            with (
                open(tmp, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=os.path.basename(target),
                    disable=None if progress else True,
                    leave=False,
                ) as bar,
            ):
                while block := response.read(_CHUNK):
                    received += len(block)
                    if received > most:
                        raise DownloadError(over)
                    out.write(block)
                    bar.update(len(block))
            if total is not None and received != total:
                raise DownloadError(f"cannot download {url}: the connection closed after {received} of {total} bytes")
            found = sha256_of(tmp)
            if sha256 is not None and found != sha256.lower():
                raise DownloadError(f"{url}: sha256 {found} does not match the expected {sha256}; nothing was kept")
    except urllib.error.HTTPError as error:
        raise DownloadError(f"cannot download {url}: {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DownloadError(f"cannot download {url}: {error.reason}") from None
    except (OSError, ValueError) as error:
        if isinstance(error, DownloadError):
            raise
        raise DownloadError(f"cannot download {url}: {error}") from None
    finally:
        remove_empty_partial(os.path.dirname(target) or ".")
    return target


# --- Archives ------------------------------------------------------------------------------------


def _name_problem(name):
    """Why a member name cannot be extracted under a folder, or None."""
    path = name.replace("\\", "/")
    if not path.strip("/") or "\0" in path:
        return "has an empty name"
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return "is an absolute path"
    if ".." in path.split("/"):
        return "has a '..' component"
    return None


def _tar_type_problem(member):
    if member.isreg() or member.isdir():
        return None
    if member.issym():
        return f"is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device"
    if member.isfifo():
        return "is a FIFO"
    return "is not a plain file or folder"


def _zip_type_problem(info):
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):  # 0: written without Unix attributes
        return None
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind in (stat.S_IFCHR, stat.S_IFBLK):
        return "is a device"
    if kind == stat.S_IFIFO:
        return "is a FIFO"
    return "is not a plain file or folder"


class _Archive:
    """One interface over a tar or zip file: members as `(name, is_dir, declared size, type problem)`."""

    def __init__(self, path):
        self.zip = path.endswith(".zip")
        self.handle = zipfile.ZipFile(path) if self.zip else tarfile.open(path, "r:*")

    def members(self):
        if self.zip:
            for info in self.handle.infolist():
                yield info, info.filename, info.is_dir(), info.file_size, _zip_type_problem(info)
        else:
            for member in self.handle:  # lazily: a bad first member is refused before the rest is read
                yield member, member.name, member.isdir(), member.size, _tar_type_problem(member)

    def open(self, member):
        return self.handle.open(member) if self.zip else self.handle.extractfile(member)

    def close(self):
        self.handle.close()


def _check(path, label, most):
    """Raises for the first member that may not be extracted, or when the members add up past `most`."""
    archive = _Archive(path)
    declared = 0
    try:
        for _, name, _, size, problem in archive.members():
            problem = _name_problem(name) or problem
            if problem:
                raise DownloadError(f"{label}: refused: member {name!r} {problem}; nothing was extracted")
            declared += size
            if declared > most:
                raise DownloadError(
                    f"{label}: refused: its members expand to more than the limit of {most} bytes "
                    f"(at {name!r}; set {EXTRACT_LIMIT_VARIABLE} to raise it); nothing was extracted"
                )
    finally:
        archive.close()


def _write_members(path, label, folder, most):
    archive = _Archive(path)
    written = 0
    try:
        for member, name, is_dir, _, _ in archive.members():
            target = os.path.join(folder, *[p for p in name.replace("\\", "/").split("/") if p not in ("", ".")])
            if is_dir:
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with archive.open(member) as source, open(target, "wb") as out:
                while block := source.read(_CHUNK):
                    written += len(block)
                    if written > most:
                        raise DownloadError(
                            f"{label}: refused: more than the limit of {most} bytes came out of it "
                            f"(at {name!r}; set {EXTRACT_LIMIT_VARIABLE} to raise it); nothing was extracted"
                        )
                    out.write(block)
    finally:
        archive.close()


def extract_archive(path, folder, label=None, max_bytes=None):
    """Extracts the archive `path` into the new folder `folder`, all or nothing (see the module doc).

    `label` names the archive in messages (default: `path`), e.g. the URL it
    came from. A `folder` that exists is replaced only when extraction succeeds.

    Args:
        path: a `.tar.gz`, `.tgz`, `.tar` or `.zip` file.
        folder: the folder to create (replaced only when extraction succeeds).
        label: how messages name the archive (default: `path`).
        max_bytes: the limit on the extracted size (default: `limit(EXTRACT_LIMIT_VARIABLE)`).

    Examples:
    >>> extract_archive("preset.tar.gz", "preset")  # doctest: +SKIP
    'preset'
    """
    label = label or path
    most = limit(EXTRACT_LIMIT_VARIABLE, max_bytes)
    staging = os.path.join(os.path.dirname(os.path.abspath(folder)), PARTIAL, os.path.basename(folder))
    shutil.rmtree(staging, ignore_errors=True)
    try:
        _check(path, label, most)
        _write_members(path, label, staging, most)
        os.makedirs(staging, exist_ok=True)  # an archive of no files is still a folder
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as error:
        raise DownloadError(f"{label}: not a readable archive ({error}); nothing was extracted") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        remove_empty_partial(os.path.dirname(os.path.abspath(folder)))
    return folder
