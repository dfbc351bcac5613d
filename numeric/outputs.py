"""Output files that cannot mix runs: checked paths, atomic writes, strict JSON, folder locks.

- ``check_output_file(path, inputs)``: a file may be written there (its folder exists, it is
  not a folder, it is none of the run's inputs) — checked before the work starts;
- ``write_text`` / ``write_json`` / ``atomic_path``: a temporary file in the same folder,
  then ``os.replace``, so a reader sees the old file or the new one, never half of one;
- ``strict_json``: JSON without ``NaN``/``Infinity`` (a non-finite number is a bug of the
  producer, reported with its place in the object);
- ``claim_folder(out)``: the run's output folder, locked against a second concurrent run and
  cleared of the previous run's ``results.json`` (and the figures it lists), so an interrupted
  run never leaves an old, complete-looking ``results.json`` beside new figures.

Every problem a user can cause raises ``OutputError`` (a ``ValueError``) naming the path.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the lock degrades to an exclusive create
    fcntl = None

#: Name of the lock file a run keeps in its output folder while it writes there.
LOCK_NAME = ".attnflow.lock"
RESULTS_NAME = "results.json"
#: Files a run writes beside results.json (wall times), cleared with it.
SIDE_FILES = ("timings.json",)


class OutputError(ValueError):
    """An output path that cannot be written, or a folder another run is using."""


def check_output_file(path, inputs: Iterable = ()) -> Path:
    """``path`` as a ``Path`` once it is known to be writable as a file: its folder exists,
    it is not a folder, and it is not one of ``inputs`` (never overwrite what is read)."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {path}: directory {parent} does not exist")
    for source in inputs:
        if path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise OutputError(f"cannot write {path}: it is the input file {source}")
    return path


def check_output_folder(path) -> Path:
    """``path`` as a ``Path`` once it is known to be usable as an output folder (an existing
    folder, or a path where one can be made): not a file, not a symbolic link to nowhere or
    in a loop, below a folder."""
    path = Path(path)
    if _exists(path):
        if not path.is_dir():
            raise OutputError(f"cannot write into {path}: it exists and is not a directory")
        return path
    for parent in path.parents:
        if _exists(parent):
            if not parent.is_dir():
                raise OutputError(f"cannot make {path}: {parent} is not a directory")
            break
    return path


def check_writable(folder) -> Path:
    """``folder`` once a file has been made in it (and removed): a read-only folder is
    refused before the work, not when its results are written."""
    folder = Path(folder)
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".attnflow-write-test.")
    except OSError as err:
        raise OutputError(f"cannot write into {folder}: {err.strerror}") from None
    os.close(fd)
    os.unlink(tmp)
    return folder


def _exists(path: Path) -> bool:
    """Whether ``path`` names something; ``OutputError`` for a name that cannot be followed
    (a symbolic link to nothing, a loop of links), where a folder could not be made either."""
    try:
        os.stat(path)
        return True
    except FileNotFoundError:
        if path.is_symlink():
            raise OutputError(f"cannot write into {path}: it is a symbolic link to "
                              f"{os.readlink(path)}, which does not exist") from None
        return False
    except OSError as err:  # ELOOP, ENOTDIR, EACCES on the way
        raise OutputError(f"cannot write into {path}: {err.strerror}") from None


def strict_json(obj, *, indent: int | None = 2) -> str:
    """``json.dumps`` refusing ``NaN`` and ``±Infinity``; the error names where one sits."""
    where = _non_finite(obj, "$")
    if where is not None:
        raise ValueError(f"non-finite number at {where}: a report holds finite numbers or "
                         f"null (with a reason)")
    return json.dumps(obj, indent=indent, allow_nan=False, ensure_ascii=False)


def _non_finite(obj, where: str) -> str | None:
    if isinstance(obj, float):
        return None if math.isfinite(obj) else where
    if isinstance(obj, dict):
        items = ((f"{where}.{k}", v) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(obj))
    else:
        return None
    return next((w for w in (_non_finite(v, p) for p, v in items) if w is not None), None)


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same suffix) to write to; renamed onto ``path`` when
    the block ends without an exception, removed otherwise."""
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.",
                                   suffix=path.suffix)
    except OSError as err:  # a read-only folder, a full disk
        raise OutputError(f"cannot write {path}: {err.strerror}") from None
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _file_mode(path))  # mkstemp makes 0600; give what open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _file_mode(path: Path) -> int:
    """The existing file's permissions, else those of a new file under the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    path = check_output_file(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_json(path, obj) -> Path:
    """Write ``obj`` as strict JSON (see ``strict_json``) to ``path`` atomically."""
    return write_text(path, strict_json(obj) + "\n")


@contextmanager
def claim_folder(out) -> Iterator[Path]:
    """``out`` (made if missing) for one run: refuses a folder another live run holds, and
    removes the previous run's ``results.json`` and the figures it lists before the work."""
    out = check_output_folder(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd = _lock(out / LOCK_NAME)
    except OSError as err:  # a read-only folder or file system, a full disk
        raise OutputError(f"cannot write into {out}: {err.strerror}") from None
    try:
        clear_previous(out)
        yield out
    finally:
        _unlock(out / LOCK_NAME, fd)


def clear_previous(out: Path) -> list[str]:
    """Remove ``out/results.json``, the figure files it names and its side files; return what
    was removed."""
    results = out / RESULTS_NAME
    if not results.is_file():
        return []
    for name in SIDE_FILES:
        (out / name).unlink(missing_ok=True)
    try:
        names = list(_figure_names(json.loads(results.read_text(encoding="utf-8"))))
    except (ValueError, UnicodeDecodeError):
        names = []
    removed = []
    for name in names:
        # only plain file names inside the folder: a results.json never points elsewhere
        if isinstance(name, str) and name == Path(name).name and (out / name).is_file():
            (out / name).unlink()
            removed.append(name)
    results.unlink()
    return removed + [RESULTS_NAME]


def _figure_names(obj) -> Iterator[str]:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "figures" and isinstance(v, list):
                yield from v
            else:
                yield from _figure_names(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _figure_names(v)


def _lock(path: Path) -> int:
    """Hold ``path`` exclusively (``flock``: released by the kernel if the process dies)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:  # pragma: no cover
            return fd
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise OutputError(f"output folder {path.parent} is in use by another attnflow "
                              f"run ({holder}); wait for it to finish or choose another "
                              f"folder") from None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the previous holder removed the file between open and lock: retry
            os.ftruncate(fd, 0)
            os.write(fd, f"process {os.getpid()}".encode())
            return fd
        os.close(fd)


def _unlock(path: Path, fd: int) -> None:
    path.unlink(missing_ok=True)  # removed while still held, so no one locks a stale file
    os.close(fd)
