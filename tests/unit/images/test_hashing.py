"""Input hashes: same inputs, same tag; any change, a new one; by-products ignored."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.images.hashing import combine, hash_tree, stage_tree, tree_files


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def test_hash_is_stable_and_content_sensitive(tmp_path: Path) -> None:
    root = _tree(tmp_path / "a", {"pkg/__init__.py": b"", "pkg/mod.py": b"x = 1\n"})
    first = hash_tree(root)
    assert hash_tree(root) == first
    (root / "pkg/mod.py").write_bytes(b"x = 2\n")
    assert hash_tree(root) != first


def test_renames_and_exec_bits_count(tmp_path: Path) -> None:
    root = _tree(tmp_path / "a", {"run.sh": b"echo hi\n"})
    plain = hash_tree(root)
    (root / "run.sh").chmod(0o755)
    assert hash_tree(root) != plain
    (root / "run.sh").rename(root / "go.sh")
    assert hash_tree(root) not in (plain,)


def test_bytecode_and_caches_are_ignored(tmp_path: Path) -> None:
    root = _tree(tmp_path / "a", {"pkg/mod.py": b"x = 1\n"})
    before = hash_tree(root)
    _tree(root, {"pkg/__pycache__/mod.cpython-311.pyc": b"junk", "pkg/old.pyc": b"junk", ".pytest_cache/x": b"1"})
    assert hash_tree(root) == before
    assert [p.as_posix() for p in tree_files(root)] == ["pkg/mod.py"]


def test_staged_copy_hashes_like_the_source(tmp_path: Path) -> None:
    root = _tree(tmp_path / "src", {"a.py": b"1", "sub/b.py": b"2", "sub/__pycache__/b.pyc": b"3"})
    stage_tree(root, tmp_path / "dst")
    assert hash_tree(tmp_path / "dst") == hash_tree(root)
    assert not (tmp_path / "dst/sub/__pycache__").exists()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=8), st.text(max_size=8)), max_size=5))
def test_combine_depends_on_every_part(parts: list[tuple[str, str]]) -> None:
    assert combine(parts) == combine(list(parts))
    assert combine([*parts, ("extra", "x")]) != combine(parts)
