"""Content hashes of image inputs: an unchanged input gives an unchanged tag."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

# Build by-products that never belong in an image nor in its hash.
# _shipped: an installed package's copy of docker/ and experiments/ (chaos.shipped), not toolkit code.
IGNORED_DIRS = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", "_shipped"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def tree_files(root: Path) -> list[Path]:
    """Files under ``root`` that go into an image, relative, in a stable order."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in sorted(files):
            if name.endswith(IGNORED_SUFFIXES):
                continue
            path = Path(folder, name)
            if path.is_file():
                found.append(path.relative_to(root))
    return found


def hash_tree(root: Path, into: hashlib._Hash | None = None) -> str:
    """Hash of the names, executable bits and contents of ``tree_files(root)``."""
    digest = into or hashlib.sha256()
    for rel in tree_files(root):
        path = root / rel
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update(b"x" if os.access(path, os.X_OK) else b"-")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def stage_tree(src: Path, dst: Path) -> None:
    """Copy ``tree_files(src)`` to ``dst`` (a snapshot: later edits to src don't leak in)."""
    for rel in tree_files(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, target)


def combine(parts: Iterable[tuple[str, str]]) -> str:
    """One hash over named parts, e.g. [("dockerfile", h1), ("base", image_id)]."""
    digest = hashlib.sha256()
    for name, value in parts:
        digest.update(f"{name}={value}\n".encode())
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
