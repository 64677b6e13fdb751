"""The proxy image's tag follows its inputs, and a present tag is reused (fake engine; the real one is in tests/docker/compat)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import docker

from chaos.images import ImageConfig
from chaos.images.base import BuiltImage
from chaos.images.proxy import ensure_proxy, proxy_inputs_hash, proxy_ref

SERVICES = BuiltImage("services", "roomquake/services:abc", "sha256:" + "a" * 64, False, 0.0, "dockerfile")


class FakeImages:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def get(self, ref: str):
        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return type("Image", (), {"id": "sha256:" + "b" * 64})()


class NoBuilds:
    """An engine where every wanted tag exists: building would be a bug."""

    def __init__(self, present: set[str]) -> None:
        self.images = FakeImages(present)

    @property
    def api(self):
        raise AssertionError("nothing should be built")


def test_proxy_hash_follows_the_services_image_and_the_dockerfile(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile.proxy"
    dockerfile.write_text("FROM x\nCMD [\"a\"]\n")
    first = proxy_inputs_hash(SERVICES, dockerfile)
    assert proxy_inputs_hash(SERVICES, dockerfile) == first
    assert proxy_inputs_hash(dataclasses.replace(SERVICES, id="sha256:" + "c" * 64), dockerfile) != first
    dockerfile.write_text("FROM x\nCMD [\"b\"]\n")
    assert proxy_inputs_hash(SERVICES, dockerfile) != first


def test_a_present_tag_is_used_without_building(tmp_path: Path) -> None:
    config = ImageConfig(cache_dir=tmp_path, prefix="rq-unit")
    ref = proxy_ref(config, SERVICES)
    assert ref.startswith("rq-unit/proxy:") and len(ref.split(":")[1]) == 12
    found = ensure_proxy(NoBuilds({ref}), config, SERVICES)  # type: ignore[arg-type]
    assert (found.kind, found.ref, found.built, found.id) == ("proxy", ref, False, "sha256:" + "b" * 64)
