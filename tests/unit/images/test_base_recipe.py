"""The Debian base recipe and the errors of building it, on real processes."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from chaos.engine import DiskFull, disk_full, is_disk_full
from chaos.errors import EnvironmentProblem
from chaos.images import base
from chaos.images.base import base_inputs_hash, build_debian_base, check_can_build_debian_base, mmdebstrap_command
from chaos.images.config import ImageConfig


def _config(tmp_path: Path) -> ImageConfig:
    return ImageConfig(cache_dir=tmp_path / "cache")


def test_recipe_trims_docs_and_includes_python_and_redis(tmp_path: Path) -> None:
    command = mmdebstrap_command(_config(tmp_path), tmp_path / "out.tar")
    assert command[:2] == ["mmdebstrap", "--variant=apt"]
    include = next(arg for arg in command if arg.startswith("--include="))
    assert {"python3", "python3-venv", "redis-server", "iproute2", "procps", "ca-certificates"} <= set(
        include.removeprefix("--include=").split(",")
    )
    assert "--dpkgopt=path-exclude=/usr/share/doc/*" in command
    assert command[-2:] == ["bookworm", str(tmp_path / "out.tar")]


def test_base_hash_follows_the_recipe(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert base_inputs_hash(config) == base_inputs_hash(_config(tmp_path / "other"))  # cache dir is no input
    assert base_inputs_hash(dataclasses.replace(config, packages=(*config.packages, "curl"))) != base_inputs_hash(config)
    assert base_inputs_hash(dataclasses.replace(config, suite="trixie")) != base_inputs_hash(config)


def test_missing_mmdebstrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EnvironmentProblem) as caught:
        check_can_build_debian_base(_config(tmp_path))
    line = caught.value.one_line()
    assert "mmdebstrap is not installed" in line and "apt-get install -y mmdebstrap" in line


def _fake_mmdebstrap(tmp_path: Path, script: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "mmdebstrap"
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(0o755)
    return bin_dir


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first; this runs as root")
def test_mmdebstrap_out_of_space_is_disk_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_mmdebstrap(tmp_path, "echo 'E: tar: write error: No space left on device' >&2\nexit 1\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(DiskFull) as caught:
        build_debian_base(None, _config(tmp_path), "t/base:x", "x" * 64, lambda _: None)  # type: ignore[arg-type]
    assert "disk full while building the base image" in caught.value.one_line()


@pytest.mark.skipif(os.geteuid() != 0, reason="the root check comes first; this runs as root")
def test_mmdebstrap_failure_names_the_error_and_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = _fake_mmdebstrap(tmp_path, "echo 'I: starting'\necho 'E: apt-get update failed' >&2\nexit 3\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(EnvironmentProblem) as caught:
        build_debian_base(None, _config(tmp_path), "t/base:x", "y" * 64, lambda _: None)  # type: ignore[arg-type]
    line = caught.value.one_line()
    assert "mmdebstrap failed (exit 3): E: apt-get update failed" in line and "full log:" in line
    assert "\n" not in line


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_not_root_is_refused_before_anything_runs(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            check_can_build_debian_base(ImageConfig(cache_dir=cache))
            os.write(write_end, b"no error")
        except EnvironmentProblem as err:
            os.write(write_end, err.one_line().encode())
        except BaseException as err:  # noqa: BLE001
            os.write(write_end, f"wrong error {err!r}".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    if "mmdebstrap is not installed" in message:
        pytest.skip("mmdebstrap absent: the root check is not reached")
    assert message.startswith("building the base image from Debian packages needs root"), message


def test_little_free_space_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if os.geteuid() != 0:
        pytest.skip("the root check comes first")
    bin_dir = _fake_mmdebstrap(tmp_path, "exit 0\n")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setattr(base, "MIN_FREE_BYTES", 1 << 60)  # more than any disk has
    with pytest.raises(DiskFull) as caught:
        check_can_build_debian_base(_config(tmp_path))
    assert "MiB free" in str(caught.value)


def test_enospc_is_recognised_from_a_real_write() -> None:
    with pytest.raises(OSError) as caught, open("/dev/full", "wb", buffering=0) as full:
        full.write(b"x")
    assert is_disk_full(caught.value)
    assert is_disk_full(RuntimeError("write /var/lib/docker/tmp: no space left on device"))
    assert not is_disk_full(RuntimeError("permission denied"))
    assert "disk full while" in disk_full("doing", "here").one_line()
