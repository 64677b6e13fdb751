"""Each way of failing to reach the engine gives its own one-line error, on real sockets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chaos import engine
from chaos.engine import EnginePermission, EngineUnreachable, NoEngine, connect


def test_no_engine_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "DEFAULT_SOCKET", str(tmp_path / "docker.sock"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no dockerd anywhere
    with pytest.raises(NoEngine) as caught:
        connect(timeout=2, environ={})
    line = caught.value.one_line()
    assert "no Docker engine is installed" in line and "apt-get install -y docker.io" in line


def test_installed_but_not_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "dockerd").write_text("#!/bin/sh\n")
    (fake_bin / "dockerd").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake_bin))
    monkeypatch.setattr(engine, "DEFAULT_SOCKET", str(tmp_path / "docker.sock"))
    with pytest.raises(EngineUnreachable) as caught:
        connect(timeout=2, environ={})
    assert "is not running" in str(caught.value) and "start it" in caught.value.one_line()


def test_docker_host_socket_missing_is_unreachable(tmp_path: Path) -> None:
    address = f"unix://{tmp_path}/nothing.sock"
    with pytest.raises(EngineUnreachable) as caught:
        connect(timeout=2, environ={"DOCKER_HOST": address})
    assert address in str(caught.value)


def test_refused_tcp_port_is_unreachable() -> None:
    with socket.socket() as spare:  # a port that was free a moment ago: nothing listens
        spare.bind(("127.0.0.1", 0))
        port = spare.getsockname()[1]
    with pytest.raises(EngineUnreachable) as caught:
        connect(timeout=2, environ={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert "is not running" in str(caught.value)


def test_silent_engine_times_out() -> None:
    with socket.socket() as silent:  # accepts (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        with pytest.raises(EngineUnreachable) as caught:
            connect(timeout=1, environ={"DOCKER_HOST": f"tcp://127.0.0.1:{port}"})
    assert "did not answer in time" in str(caught.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_permission_denied_on_socket(tmp_path: Path) -> None:
    sock_path = tmp_path / "engine.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    server.listen(1)
    sock_path.chmod(0o600)  # root only, like /var/run/docker.sock without the docker group
    tmp_path.chmod(0o755)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: become nobody and try
        os.close(read_end)
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            connect(timeout=2, environ={"DOCKER_HOST": f"unix://{sock_path}"})
        except EnginePermission as err:
            os.write(write_end, err.one_line().encode())
            code = 0
        except BaseException as err:  # noqa: BLE001 - reported to the parent
            os.write(write_end, f"wrong error: {type(err).__name__}: {err}".encode())
        os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        message = pipe.read()
    _, status = os.waitpid(pid, 0)
    server.close()
    assert os.waitstatus_to_exitcode(status) == 0, message
    assert "permission denied" in message and "docker' group" in message


def test_cli_prints_one_line_and_exits_nonzero(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/nothing.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "chaos", "images", "build"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("roomquake: error: the Docker engine at unix://") and "Traceback" not in result.stderr
