"""Images into every node without a registry: ``docker save`` once from the host engine, ``docker load`` into each node.

Measured against Debian's ``docker-registry`` on the bridge (README, "A
local cluster"): saving the 288 MB services image took ~9 s and loading it
~7 s per node, while pushing it to the registry took ~91 s (every layer
compressed on 2 cores) and pulling ~22 s per node; the registry would also
need an insecure-registry setting on every engine and a daemon on the
bridge. The tar goes to the cluster's data folder and is deleted once loaded.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.cluster.daemon import RUN_ROOT, NodePaths, client
from chaos.cluster.system import ClusterError

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]


def host_engine() -> "contextlib.closing[docker.DockerClient]":
    """The engine images are built on: DOCKER_HOST's, unless that names a local cluster node (then the default one)."""
    from chaos.engine import connect

    env = dict(os.environ)
    if env.get("DOCKER_HOST", "").startswith(f"unix://{RUN_ROOT}/"):
        env.pop("DOCKER_HOST")
    return contextlib.closing(connect(environ=env))


def has_image(engine: "docker.DockerClient", ref: str) -> bool:
    import docker

    try:
        engine.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def save(source: "docker.DockerClient", ref: str, path: Path) -> None:
    import docker

    try:
        with open(path, "wb") as out:
            for chunk in source.api.get_image(ref, chunk_size=1 << 20):
                out.write(chunk)
    except docker.errors.DockerException as err:
        from chaos.engine import failure

        raise ClusterError(failure(err, f"saving image {ref}").one_line()) from err


def load(node: NodePaths, path: Path) -> None:
    import docker

    try:
        with client(node, timeout=600) as engine, open(path, "rb") as tar:
            for _ in engine.api.load_image(tar):  # the engine streams progress; it is done when the stream ends
                pass
    except docker.errors.DockerException as err:
        from chaos.engine import failure

        raise ClusterError(failure(err, f"loading {path.name} into node {node.index}").one_line()) from err


def load_from(source: "docker.DockerClient", ref: str, target: "docker.DockerClient") -> None:
    """Stream ``ref`` from one engine into another (no file in between)."""
    import docker

    try:
        for _ in target.api.load_image(source.api.get_image(ref, chunk_size=1 << 20)):
            pass
    except docker.errors.DockerException as err:
        from chaos.engine import failure

        raise ClusterError(failure(err, f"loading image {ref} into a node").one_line()) from err


def distribute(
    source: "docker.DockerClient", refs: Iterable[str], nodes: list[NodePaths], workdir: Path,
    progress: Progress = lambda _: None,
) -> float:
    """Load every ref that a node lacks into that node; returns the seconds it took."""
    started = time.monotonic()
    for ref in refs:
        lacking = []
        for node in nodes:
            with client(node) as engine:
                if not has_image(engine, ref):
                    lacking.append(node)
        if not lacking:
            continue
        if not has_image(source, ref):
            raise ClusterError(f"image {ref} is not in the host engine either: build it first (roomquake images build)")
        tar = workdir / f"image-{ref.replace('/', '_').replace(':', '_')}.tar"
        try:
            progress(f"saving {ref}")
            save(source, ref, tar)
            progress(f"loading {ref} into node(s) {', '.join(str(n.index) for n in lacking)}")
            with ThreadPoolExecutor(max_workers=len(lacking)) as pool:
                list(pool.map(lambda node: load(node, tar), lacking))
        finally:
            tar.unlink(missing_ok=True)
    return time.monotonic() - started
