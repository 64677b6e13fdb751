"""Which base is used and when images count as changed (fake engine; the real one is in tests/docker)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import docker
import pytest

from chaos.errors import EnvironmentProblem, UsageError
from chaos.images import ImageConfig, ensure_images
from chaos.images.base import BuiltImage, base_inputs_hash, ensure_base
from chaos.images.services import services_inputs_hash
from chaos.images.wheels import WheelSet, ensure_wheels

ROOT = Path(__file__).resolve().parents[3]


class FakeImage:
    def __init__(self, ref: str) -> None:
        self.id = "sha256:" + ref.encode().hex()[:64].ljust(64, "0")


class FakeImages:
    def __init__(self, present: set[str], pullable: set[str]) -> None:
        self.present, self.pullable, self.pulls = present, pullable, []

    def get(self, ref: str) -> FakeImage:
        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return FakeImage(ref)

    def pull(self, ref: str) -> FakeImage:
        self.pulls.append(ref)
        if ref not in self.pullable:
            raise docker.errors.APIError("pull access denied: no registry here")
        self.present.add(ref)
        return FakeImage(ref)


class FakeClient:
    def __init__(self, present: set[str] = frozenset(), pullable: set[str] = frozenset()) -> None:
        self.images = FakeImages(set(present), set(pullable))


def _debian_tag(config: ImageConfig) -> str:
    return f"{config.repository('base')}:{base_inputs_hash(config)[:12]}"


def test_a_configured_local_base_is_used_as_is(tmp_path: Path) -> None:
    config = ImageConfig(cache_dir=tmp_path, base_image="python:3.11-slim")
    client = FakeClient(present={"python:3.11-slim"})
    base = ensure_base(client, config)  # type: ignore[arg-type]
    assert (base.ref, base.source, base.built) == ("python:3.11-slim", "configured", False)
    assert client.images.pulls == []


def test_nothing_is_pulled_unless_asked(tmp_path: Path) -> None:
    config = ImageConfig(cache_dir=tmp_path, base_image="python:3.11-slim")
    said: list[str] = []
    client = FakeClient(present={_debian_tag(config)}, pullable={"python:3.11-slim"})
    base = ensure_base(client, config, said.append)  # type: ignore[arg-type]
    assert base.source == "debian" and client.images.pulls == []
    assert "ROOMQUAKE_PULL=1" in said[0]


def test_pull_where_a_registry_answers(tmp_path: Path) -> None:
    config = ImageConfig(cache_dir=tmp_path, base_image="python:3.11-slim", pull=True)
    client = FakeClient(pullable={"python:3.11-slim"})
    base = ensure_base(client, config)  # type: ignore[arg-type]
    assert (base.ref, base.source, base.built) == ("python:3.11-slim", "pulled", True)


def test_a_failed_pull_falls_back_to_the_debian_base(tmp_path: Path) -> None:
    config = ImageConfig(cache_dir=tmp_path, base_image="python:3.11-slim", pull=True)
    said: list[str] = []
    client = FakeClient(present={_debian_tag(config)})
    base = ensure_base(client, config, said.append)  # type: ignore[arg-type]
    assert base.source == "debian" and base.ref == _debian_tag(config)
    assert any("could not pull python:3.11-slim" in line for line in said)


def _tree(tmp_path: Path) -> dict[str, Path]:
    for name in ("chaos", "audioroom"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "__init__.py").write_text(name)
    return {"chaos": tmp_path / "chaos", "docker/audioroom": tmp_path / "audioroom"}


def test_services_hash_follows_every_input(tmp_path: Path) -> None:
    sources = _tree(tmp_path)
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("FROM x\n")
    base = BuiltImage("base", "b:1", "sha256:aa", False, 0.0, "debian")
    wheels = WheelSet(tmp_path, "digest-1", ())
    first = services_inputs_hash(base, wheels, dockerfile, sources)
    assert services_inputs_hash(base, wheels, dockerfile, sources) == first
    assert services_inputs_hash(dataclasses.replace(base, id="sha256:bb"), wheels, dockerfile, sources) != first
    assert services_inputs_hash(base, WheelSet(tmp_path, "digest-2", ()), dockerfile, sources) != first
    dockerfile.write_text("FROM y\n")
    second = services_inputs_hash(base, wheels, dockerfile, sources)
    assert second != first
    (sources["docker/audioroom"] / "edge.py").write_text("x = 1\n")
    assert services_inputs_hash(base, wheels, dockerfile, sources) != second


def test_an_incomplete_checkout_is_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="image input missing: .*Dockerfile.services"):
        ensure_images(FakeClient(), ImageConfig(root=tmp_path, cache_dir=tmp_path / "cache"))  # type: ignore[arg-type]


def test_wheel_download_failure_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "checkout"
    root.mkdir()
    for name in ("pyproject.toml", "constraints.txt"):
        shutil.copy(ROOT / name, root / name)
    empty = tmp_path / "no-wheels"
    empty.mkdir()
    # A real pip run, kept off the network: no index, and nothing to find.
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(EnvironmentProblem) as caught:
        ensure_wheels(ImageConfig(root=root, cache_dir=tmp_path / "cache"))
    line = caught.value.one_line()
    assert line.startswith("could not download the runtime wheels") and "needs PyPI" in line and "\n" not in line
    assert not list((tmp_path / "cache/wheels").glob("[!.]*"))  # no half-filled cache entry


def test_unwritable_cache_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")  # the cache folder's place is taken by a file
    config = ImageConfig(cache_dir=blocker / "cache")
    with pytest.raises(EnvironmentProblem, match="image build: "):
        ensure_images(FakeClient(), config)  # type: ignore[arg-type]
