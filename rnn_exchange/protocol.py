"""What the exchange's client and server share: the API's paths, names, archives, errors.

Standard library only: students' servers import it (through :mod:`rnn_exchange.plugin`),
and so does the grading service (:mod:`autograder.service.http_exchange`).

Files travel as gzip'd tar archives of one folder.  :func:`unpack` is the only
way into a folder on either side: regular files and folders only (no link,
device or fifo), relative paths without ``..``, and limits on the number of
files and their sizes checked on the archive's headers *before* anything is
written, then again on the bytes read.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from pathlib import PurePosixPath

API = "exchange/v1"
"""The API's root under the grading service's URL: ``<service>/exchange/v1/<course>/...``."""

# A course or assignment name becomes a folder name on the service and in students'
# servers, and part of a submission's name (student+assignment+timestamp+nonce).
NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
# The client's random id of one submit request (replays are refused by it)
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")
ARCHIVE_TYPE = "application/gzip"


def name_problem(kind: str, value) -> str | None:
    """Why ``value`` cannot be a course or assignment name (one line), or None."""
    if isinstance(value, str) and NAME.fullmatch(value) and ".." not in value:
        return None
    return (f"{kind} name {str(value)[:80]!r} refused: letters, digits, _ . - only "
            "(no path characters), at most 64")


class ExchangeRefused(Exception):
    """A refusal with an HTTP status and a one-line message (raised on both sides)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = " ".join(str(message).split())

    def body(self) -> bytes:
        return json.dumps({"error": self.message}).encode()


def _ignored(name: str, ignore) -> bool:
    import fnmatch

    return any(fnmatch.fnmatch(name, pattern) for pattern in ignore)


def pack(folder, ignore=(), extra: dict[str, bytes] | None = None) -> bytes:
    """A gzip'd tar of the regular files under ``folder`` (links are left out), plus ``extra``."""
    buffer = io.BytesIO()
    root = os.fspath(folder)
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for dirname, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not _ignored(d, ignore)
                             and not os.path.islink(os.path.join(dirname, d)))
            for name in sorted(files):
                path = os.path.join(dirname, name)
                if _ignored(name, ignore) or os.path.islink(path) or not os.path.isfile(path):
                    continue
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                if extra and rel in extra:
                    continue
                with open(path, "rb") as fh:
                    _add(tar, rel, fh.read())
        for rel, data in (extra or {}).items():
            _add(tar, rel, data)
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, rel: str, data: bytes) -> None:
    info = tarfile.TarInfo(rel)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def members(data: bytes, *, max_files: int, max_bytes: int, max_file_bytes: int) -> dict:
    """``{relative path: bytes}`` of an archive, every check passed, or ExchangeRefused.

    413: more than ``max_files`` files, a file over ``max_file_bytes``, more than
    ``max_bytes`` in all; 400: not a gzip'd tar, or a member that is not a regular
    file or folder, or whose path leaves the folder.
    """
    try:
        tar = tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")
        infos = tar.getmembers()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ExchangeRefused(400, f"the upload is not a gzip'd tar archive ({exc})") from None
    files = [i for i in infos if not i.isdir()]
    if len(files) > max_files:
        raise ExchangeRefused(413, f"{len(files)} files: at most {max_files} per upload")
    total = 0
    for info in infos:
        rel = PurePosixPath(info.name)
        if (rel.is_absolute() or ".." in rel.parts or not rel.parts
                or any(p in ("", ".") for p in info.name.split("/")) or "\\" in info.name):
            raise ExchangeRefused(400, f"{info.name[:80]!r}: a path outside the folder")
        if not (info.isfile() or info.isdir()):
            raise ExchangeRefused(400, f"{info.name[:80]!r}: only regular files and folders")
        if info.isfile():
            if info.size > max_file_bytes:
                raise ExchangeRefused(413, f"{info.name[:80]} is {info.size} bytes: at most "
                                           f"{max_file_bytes} per file")
            total += info.size
            if total > max_bytes:
                raise ExchangeRefused(413, f"over {max_bytes} bytes in all: too large")
    out: dict[str, bytes] = {}
    try:
        for info in files:
            fh = tar.extractfile(info)
            content = fh.read(info.size + 1) if fh is not None else b""
            if len(content) != info.size:
                raise ExchangeRefused(400, f"{info.name[:80]!r}: truncated in the archive")
            out[info.name] = content
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise ExchangeRefused(400, f"the archive cannot be read ({exc})") from None
    return out


def write_files(folder, files: dict[str, bytes], mode: int = 0o600) -> None:
    """Write ``files`` (from :func:`members`) under ``folder``, which exists and is empty."""
    root = os.fspath(folder)
    for rel, content in files.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)


def replace_folder(dest, files: dict[str, bytes], *, scratch, mode: int = 0o600) -> None:
    """``dest`` made of ``files``, whole or not at all: written into a new folder under
    ``scratch`` (same file system), the old ``dest`` moved aside, the new one renamed in."""
    import secrets
    import shutil

    partial = os.path.join(os.fspath(scratch), f".{secrets.token_hex(8)}.partial")
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(dest))), exist_ok=True)
    os.mkdir(partial, 0o700)
    try:
        write_files(partial, files, mode)
        if os.path.isdir(dest):
            old = partial + ".old"
            os.rename(dest, old)
            shutil.rmtree(old)
        os.rename(partial, dest)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def unpack(data: bytes, folder, *, max_files: int, max_bytes: int,
           max_file_bytes: int) -> dict[str, bytes]:
    """:func:`members` written under the empty folder ``folder``; the files."""
    files = members(data, max_files=max_files, max_bytes=max_bytes,
                    max_file_bytes=max_file_bytes)
    write_files(folder, files)
    return files
