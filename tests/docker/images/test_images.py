"""Offline images on the real engine: contents, hash tags, no-op rebuilds, concurrent builders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.stack.containers import ContainerSpec, http_probe, run_container, run_network, wait_ready
from chaos.images import ImageSet, ensure_images
from chaos.images.config import BASE, INPUTS, KIND, ImageConfig
from chaos.images.hashing import stage_tree
from chaos.labels import RunIdentity

ROOT = Path(__file__).resolve().parents[3]
PREFIX = f"roomquake-test-{os.getpid()}"  # our own repositories: removing them touches no one else's


def _run(client, image: str, command: list[str], **kwargs) -> str:
    """Run to completion and return the output (waits longer than the client's default timeout)."""
    container = client.containers.run(image, command, detach=True, labels=RunIdentity().labels(), **kwargs)
    try:
        status = container.wait(timeout=300)["StatusCode"]
        output = container.logs().decode()
        assert status == 0, output
        return output
    finally:
        container.remove(force=True)


def test_base_has_python_311_redis_and_network_tools(docker_engine, stack_images: ImageSet) -> None:
    base = docker_engine.images.get(stack_images.base.ref)
    if stack_images.base.source == "debian":
        assert base.labels[KIND] == "base" and len(base.labels[INPUTS]) == 64
    out = _run(docker_engine, stack_images.base.ref, ["sh", "-c", "python3 --version; redis-server --version; ip -V"])
    assert "Python 3.11" in out and "Redis server" in out and "iproute2" in out


def test_services_venv_is_complete_without_network(docker_engine, stack_images: ImageSet) -> None:
    image = docker_engine.images.get(stack_images.services.ref)
    assert image.labels[KIND] == "services" and image.labels[BASE] == stack_images.base.ref
    # pip check proves every dependency marker of the image's own Python is met
    # (the async-timeout gotcha), and the imports prove the packages are there.
    script = (
        "python -m pip check && python -c 'import chaos, chaos.proxy, audioroom, docker, toxiproxy, redis.asyncio,"
        " aiohttp, websockets, uvloop, pydantic; print(\"imports ok\")'"
    )
    out = _run(docker_engine, stack_images.services.ref, ["sh", "-c", script], network_mode="none")
    assert "No broken requirements found" in out and "imports ok" in out


def test_default_command_asks_for_rq_service(docker_engine, stack_images: ImageSet) -> None:
    container = docker_engine.containers.run(stack_images.services.ref, detach=True, labels=RunIdentity().labels())
    try:
        assert container.wait(timeout=60)["StatusCode"] != 0
        assert "RQ_SERVICE names the audioroom service" in container.logs().decode()
    finally:
        container.remove(force=True)


def test_fault_proxy_runs_from_the_services_image(docker_engine, stack_images: ImageSet) -> None:
    identity = RunIdentity()
    spec = ContainerSpec(
        image=stack_images.services.ref,
        name="proxy",
        service="proxy",
        instance="proxy-1",
        command=["python", "-m", "chaos.proxy", "--host", "0.0.0.0", "--port", "8474", "--allow-remote"],
        ports=(8474,),
    )
    with run_network(client=docker_engine, identity=identity, pinnable=False) as net:
        with run_container(docker_engine, identity, net, spec) as proxy:
            host, port = proxy.address(8474)
            wait_ready(proxy, http_probe(f"http://{host}:{port}/version"), timeout=90)  # margin for a starved machine


# --- hash tags and rebuilds, on a frozen copy of the checkout -------------------
# Other people may edit chaos/ while this runs; a snapshot keeps the inputs still.


# Module-scoped: tests build on each other's images, so the module builds
# the services image four times rather than once per step of every test.
@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("images") / "checkout"
    for name in ("chaos", "docker/audioroom"):
        stage_tree(ROOT / name, root / name)
    for name in ("docker/Dockerfile.services", "docker/Dockerfile.proxy", "pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, root / name)
    # Content of our own: the images built here are never the same image as
    # someone else's roomquake/services (which their containers may be using).
    (root / "docker/audioroom/_test_snapshot.py").write_text(f"# {PREFIX} {os.urandom(8).hex()}\n")
    return root


@pytest.fixture(scope="module")
def test_config(snapshot: Path, stack_images: ImageSet, docker_engine) -> Iterator[ImageConfig]:
    # The session's base, as a configured base image: no second mmdebstrap run.
    yield ImageConfig(root=snapshot, prefix=PREFIX, base_image=stack_images.base.ref)
    for kind in ("proxy", "services"):  # children first: an image with children cannot go
        for image in docker_engine.images.list(name=f"{PREFIX}/{kind}"):
            for tag in image.tags:
                if tag.startswith(f"{PREFIX}/"):  # an identical image may also carry others' tags
                    docker_engine.images.remove(tag)


def test_unchanged_inputs_rebuild_nothing_and_a_change_rebuilds_services_only(
    docker_engine, test_config: ImageConfig, stack_images: ImageSet
) -> None:
    first = ensure_images(docker_engine, test_config)
    assert first.base.source == "configured" and not first.base.built
    assert first.services.ref.startswith(f"{PREFIX}/services:")
    again = ensure_images(docker_engine, test_config)
    assert again.built == [] and again.services.ref == first.services.ref and again.services.id == first.services.id
    (test_config.root / "docker/audioroom/__init__.py").write_text('"""changed by a test"""\n', encoding="utf-8")
    changed = ensure_images(docker_engine, test_config)
    assert [image.kind for image in changed.built] == ["services", "proxy"]
    assert changed.services.ref != first.services.ref and changed.base.id == first.base.id
    marker = _run(docker_engine, changed.services.ref, ["cat", "/opt/roomquake/docker/audioroom/__init__.py"])
    assert "changed by a test" in marker


def _env(config: ImageConfig) -> dict[str, str]:
    return {
        **os.environ,
        "ROOMQUAKE_ROOT": str(config.root),
        "ROOMQUAKE_IMAGE_PREFIX": config.prefix,
        "ROOMQUAKE_BASE_IMAGE": str(config.base_image),
    }


def test_cli_build_twice_second_is_up_to_date(test_config: ImageConfig) -> None:
    cli = [sys.executable, "-m", "chaos", "images"]
    first = subprocess.run([*cli, "build"], env=_env(test_config), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    second = subprocess.run([*cli, "build"], env=_env(test_config), capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("up to date") == 3 and "nothing to build" in second.stdout
    listed = subprocess.run([*cli, "list"], env=_env(test_config), capture_output=True, text=True, timeout=60)
    services_ref = next(line.split()[1] for line in second.stdout.splitlines() if line.startswith("services"))
    assert services_ref in listed.stdout


CONCURRENT = """
import json
from chaos.engine import connect
from chaos.images import config_from_env, ensure_images
images = ensure_images(connect(), config_from_env())
print(json.dumps({"ref": images.services.ref, "built": images.services.built}))
"""


def test_two_processes_at_once_build_once(test_config: ImageConfig) -> None:
    (test_config.root / "chaos/images/_concurrency_marker.py").write_text("# makes the services inputs new\n")
    procs = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT], env=_env(test_config), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(proc.communicate(timeout=600)[0].strip().splitlines()[-1]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert results[0]["ref"] == results[1]["ref"]
    assert sorted(r["built"] for r in results) == [False, True]


def test_prune_drops_stale_tags_but_not_current_or_used_ones(docker_engine, test_config: ImageConfig) -> None:
    from chaos.images.prune import prune_images

    old = ensure_images(docker_engine, test_config).services.ref
    holder = docker_engine.containers.create(old, ["true"], labels=RunIdentity().labels())
    try:
        (test_config.root / "docker/audioroom/__init__.py").write_text('"""newer"""\n', encoding="utf-8")
        new = ensure_images(docker_engine, test_config).services.ref
        held = prune_images(docker_engine, test_config, grace_s=0)
        assert old in held.kept_in_use and new in held.kept_current  # older tags of this module may go
        assert prune_images(docker_engine, test_config, grace_s=3600).kept_recent == []  # old is in use, not "recent"
    finally:
        holder.remove(force=True)
    swept = prune_images(docker_engine, test_config, grace_s=0)
    assert old in swept.removed and new in swept.kept_current
    assert {t for i in docker_engine.images.list(name=f"{PREFIX}/services") for t in i.tags} == {new}


def test_cli_without_mmdebstrap_says_so_in_one_line(docker_engine, tmp_path: Path) -> None:
    # A prefix with no base image yet forces the Debian build, which needs mmdebstrap.
    env = {**os.environ, "PATH": str(tmp_path), "ROOMQUAKE_IMAGE_PREFIX": f"{PREFIX}-nomm"}
    env.pop("ROOMQUAKE_BASE_IMAGE", None)
    result = subprocess.run(
        [sys.executable, "-m", "chaos", "images", "build"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("roomquake: error: mmdebstrap is not installed")
    assert "Traceback" not in result.stderr
    assert docker_engine.images.list(name=f"{PREFIX}-nomm/base") == []


def test_a_failed_build_is_one_line_and_leaves_no_step_container(
    docker_engine, test_config: ImageConfig, tmp_path: Path
) -> None:
    from chaos.errors import EngineError

    root = tmp_path / "broken"
    shutil.copytree(test_config.root, root)
    marker = f"rq-broken-{PREFIX}"
    with (root / "docker/Dockerfile.services").open("a") as dockerfile:
        dockerfile.write(f'RUN echo {marker} && exit 7\n')
    with pytest.raises(EngineError) as caught:
        ensure_images(docker_engine, ImageConfig(root=root, prefix=PREFIX, base_image=test_config.base_image))
    line = caught.value.one_line()
    assert "failed" in line and "non-zero code: 7" in line and "\n" not in line
    leftovers = [c for c in docker_engine.api.containers(all=True) if marker in c.get("Command", "")]
    assert leftovers == []  # --force-rm
