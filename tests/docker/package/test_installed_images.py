"""Images build from the installed package's own files (issue 11: a complete package).

The wheel's virtualenv (tests/installed.py) runs ``roomquake images build`` in
a temporary folder, away from the checkout. A marker line appended to the
installed copy of docker/audioroom/README.md changes the services image's
inputs, so the build cannot be satisfied by an image built from the
checkout: the new image must hold the marker, read back from a container.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from chaos.labels import RunIdentity


@pytest.mark.timeout(900)
def test_images_build_from_the_installed_package(installed_roomquake, docker_engine, tmp_path: Path) -> None:
    site = installed_roomquake.run("python", "-c", "import chaos.shipped as s; print(s.root())", cwd=tmp_path)
    assert site.returncode == 0, site.stderr
    readme = Path(site.stdout.strip()) / "docker" / "audioroom" / "README.md"
    marker = f"installed-{uuid.uuid4().hex[:12]}"
    readme.write_text(readme.read_text() + f"\n<!-- {marker} -->\n")
    built: list[str] = []
    try:
        done = installed_roomquake.run("roomquake", "images", "build", "-q", cwd=tmp_path, timeout=840)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        tags = dict(re.findall(r"^(services|proxy)\s+(\S+)\s+built", done.stdout, re.MULTILINE))
        assert set(tags) == {"services", "proxy"}, done.stdout  # new inputs: both were built here
        built = [tags["proxy"], tags["services"]]
        output = docker_engine.containers.run(
            tags["services"], ["cat", "/opt/roomquake/docker/audioroom/README.md"], remove=True,
            labels=RunIdentity().labels(),
        )
        assert marker in output.decode()
    finally:
        for tag in built:  # only the tags this test built
            docker_engine.images.remove(tag, noprune=False)
