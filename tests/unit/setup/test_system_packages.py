"""scripts/system-packages: what a fresh machine lacks is installed as root, or named in one line.

The script runs in a sandbox PATH holding only the tools it uses (real
bash, id, timeout, setsid...) plus stubs for apt-get, docker and dockerd, so
a package is "missing" by leaving it out of PATH and nothing is really
installed. Non-root runs use a real unprivileged user (setpriv, as nobody).
Not covered here: a real apt-get install and the systemd branch (this
machine's PID 1 is not systemd); .ci/run exercises the real script as root.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "scripts" / "system-packages"
TOOLS = ("bash", "id", "mktemp", "rm", "cat", "seq", "sleep", "timeout", "setsid", "env",
         "grep", "cut", "cp", "chmod", "touch")  # the last five for the stubs
ALL_TEST_COMMANDS = ("dockerd", "docker", "mmdebstrap", "redis-server", "chromium", "docker-compose", "node", "npm")
# what the apt-get stub "installs": package -> commands it puts on PATH
PACKAGES = {"docker.io": ("dockerd", "docker"), "redis-server": ("redis-server",), "mmdebstrap": ("mmdebstrap",),
            "chromium": ("chromium",), "docker-compose": ("docker-compose",), "nodejs": ("node",), "npm": ("npm",),
            "python3-venv": ()}
SETPRIV = shutil.which("setpriv")

APT_STUB = """#!/bin/bash
echo "apt-get $*" >> "$SANDBOX/apt.log"
[ -n "${STUB_APT_FAIL:-}" ] && [ "$1" = install ] && exit 100
if [ "$1" = install ]; then
  for pkg in "$@"; do
    case "$pkg" in -*|install) ;; *) for cmd in $(grep "^$pkg " "$SANDBOX/packages" | cut -d' ' -f2-); do
      if [ -e "$SANDBOX/templates/$cmd" ]; then cp "$SANDBOX/templates/$cmd" "$SANDBOX/bin/$cmd"
      else printf '#!/bin/bash\\nexit 0\\n' > "$SANDBOX/bin/$cmd"; fi; chmod 755 "$SANDBOX/bin/$cmd"; done ;; esac
  done
fi
exit 0
"""
DOCKER_STUB = '#!/bin/bash\n[ -e "$SANDBOX/engine-up" ]\n'
DOCKERD_STUB = '#!/bin/bash\necho started >> "$SANDBOX/dockerd.log"\ntouch "$SANDBOX/engine-up"\n'


@dataclass
class Sandbox:
    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    def stub(self, name: str, body: str = "#!/bin/bash\nexit 0\n") -> None:
        path = self.bin / name
        path.write_text(body)
        path.chmod(0o755)

    def run(self, target: str, *, as_nobody: bool = False, **env: str) -> subprocess.CompletedProcess[str]:
        environ = {"PATH": str(self.bin), "SANDBOX": str(self.root), "PYTHON": sys.executable,
                   "VENV": str(self.root / "venv"), "ROOMQUAKE_DOCKERD_LOG": str(self.root / "dockerd.out"),
                   "HOME": str(self.root), **env}
        argv = [str(self.bin / "bash"), str(self.root / "system-packages"), target]
        if as_nobody:  # this interpreter lives in root's home: nobody gets a stub that passes the version check
            assert SETPRIV is not None
            if "PYTHON" not in env:
                environ["PYTHON"] = str(self.root / "python-ok")
            argv = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
        return subprocess.run(argv, env=environ, capture_output=True, text=True, timeout=120, cwd=self.root)

    @property
    def apt_calls(self) -> list[str]:
        log = self.root / "apt.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    # Not pytest's tmp_path: its parent is private to root, and some runs are as nobody.
    root = Path(tempfile.mkdtemp(prefix="roomquake-system-"))
    try:
        root.chmod(0o777)
        box = Sandbox(root)
        box.bin.mkdir()
        for tool in TOOLS:
            found = shutil.which(tool)
            assert found, tool
            (box.bin / tool).symlink_to(found)
        shutil.copy2(SCRIPT, root / "system-packages")
        (root / "packages").write_text("".join(f"{p} {' '.join(c)}\n" for p, c in PACKAGES.items()))
        (root / "venv" / "bin").mkdir(parents=True)  # the virtualenv exists: no python3-venv probe
        (root / "venv" / "bin" / "python").write_text("#!/bin/bash\nexit 0\n")
        box.stub("apt-get", APT_STUB)
        (root / "templates").mkdir()  # what the apt-get stub installs for docker.io
        (root / "templates" / "docker").write_text(DOCKER_STUB)
        (root / "templates" / "dockerd").write_text(DOCKERD_STUB)
        (root / "python-ok").write_text("#!/bin/bash\n[ \"$1\" = -c ] && exit 0\nexit 1\n")  # for nobody
        for path in root.rglob("*"):
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IRWXO)
        yield box
    finally:
        shutil.rmtree(root, ignore_errors=True)


def all_present(box: Sandbox, engine_up: bool = True) -> None:
    for name in ALL_TEST_COMMANDS:
        box.stub(name)
    box.stub("docker", DOCKER_STUB)
    box.stub("dockerd", DOCKERD_STUB)
    if engine_up:
        (box.root / "engine-up").touch()


def test_nothing_to_do_when_everything_is_there(sandbox: Sandbox) -> None:
    all_present(sandbox)
    for target in ("demo", "test"):
        done = sandbox.run(target)
        assert (done.returncode, done.stderr) == (0, "")
    assert sandbox.apt_calls == []


def test_root_installs_what_the_demo_lacks(sandbox: Sandbox) -> None:
    done = sandbox.run("demo")  # no engine, no redis-server
    assert done.returncode == 0, done.stderr
    assert "roomquake: installing redis-server (apt-get)" in done.stderr
    assert sandbox.apt_calls == ["apt-get update -q", "apt-get install -y -q redis-server"]


def test_root_installs_every_test_package_and_starts_the_engine(sandbox: Sandbox) -> None:
    done = sandbox.run("test")
    assert done.returncode == 0, done.stderr
    assert sandbox.apt_calls[-1] == ("apt-get install -y -q docker.io mmdebstrap redis-server chromium "
                                     "docker-compose nodejs npm")
    assert "starting the Docker engine: setsid dockerd" in done.stderr
    assert (sandbox.root / "dockerd.log").read_text() == "started\n"


def test_a_failed_install_names_the_command_to_run(sandbox: Sandbox) -> None:
    done = sandbox.run("demo", STUB_APT_FAIL="1")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("roomquake: installing redis-server failed (log: /tmp/roomquake-apt.")
    assert last.endswith("run: apt-get update && apt-get install -y redis-server")


@pytest.mark.skipif(SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv to run as nobody")
def test_not_root_prints_one_line_and_installs_nothing(sandbox: Sandbox) -> None:
    done = sandbox.run("demo", as_nobody=True)
    assert done.returncode == 1
    assert done.stderr == "roomquake: missing system packages; run: sudo apt-get update && sudo apt-get install -y redis-server\n"
    assert sandbox.apt_calls == []


@pytest.mark.skipif(SETPRIV is None or os.geteuid() != 0, reason="needs root and setpriv to run as nobody")
def test_not_root_with_a_stopped_engine_is_told_how_to_start_it(sandbox: Sandbox) -> None:
    all_present(sandbox, engine_up=False)
    done = sandbox.run("demo", as_nobody=True)  # redis-server is there: the demo can still run locally
    assert done.returncode == 0
    assert done.stderr.startswith("roomquake: the Docker engine is installed but not running; start it with: sudo setsid dockerd")
    assert not (sandbox.root / "dockerd.log").exists()
    required = sandbox.run("test", as_nobody=True, ROOMQUAKE_REQUIRE_DOCKER="1")
    assert required.returncode == 1  # CI must not skip the docker tier


def test_without_apt_get_it_names_the_packages(sandbox: Sandbox) -> None:
    (sandbox.bin / "apt-get").unlink()
    done = sandbox.run("demo")
    assert done.returncode == 1
    assert done.stderr == "roomquake: missing system packages: redis-server; install them with your system's package manager\n"


def test_a_python_without_venv_support_needs_python3_venv(sandbox: Sandbox) -> None:
    all_present(sandbox)
    shutil.rmtree(sandbox.root / "venv")
    fake = sandbox.root / "python3"  # answers the version check, fails to make a virtualenv (Debian without python3-venv)
    fake.write_text('#!/bin/bash\n[ "$1" = -c ] && exit 0\necho "ensurepip is not available" >&2\nexit 1\n')
    fake.chmod(0o755)
    done = sandbox.run("demo", PYTHON=str(fake))
    assert done.returncode == 0, done.stderr
    assert sandbox.apt_calls[-1] == "apt-get install -y -q python3-venv"


def test_an_old_python_is_refused(sandbox: Sandbox) -> None:
    old = sandbox.root / "python3"
    old.write_text("#!/bin/bash\nexit 1\n")
    old.chmod(0o755)
    done = sandbox.run("demo", PYTHON=str(old))
    assert done.returncode == 1 and "Python 3.11 or newer is needed" in done.stderr
