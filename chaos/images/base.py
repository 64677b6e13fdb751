"""The base image: a configured Python image, or one built from Debian packages.

Where a registry answers, a Python image such as python:3.11-slim serves.
Where none does (our machines), mmdebstrap builds a minimal Debian with
Python and Redis from Debian's package mirror and ``docker import`` turns
the tarball into an image. Either way nothing is pulled unless asked for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from chaos.engine import disk_full, failure, id_of, is_disk_full
from chaos.errors import EngineError, EnvironmentProblem
from chaos.images.config import INPUTS, KIND, ImageConfig
from chaos.images.hashing import combine

if TYPE_CHECKING:
    import docker
    from docker.models.images import Image

Progress = Callable[[str], None]

RECIPE_VERSION = "1"  # bump when the way the base is built changes
IMPORT_CHANGES = ('ENV LANG=C.UTF-8', 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'CMD ["/bin/bash"]')
# mmdebstrap's tarball plus its unpacked copy in the engine, with room to spare.
MIN_FREE_BYTES = 600 * 1024 * 1024


@dataclass(frozen=True)
class BuiltImage:
    kind: str  # "base" | "services" | "proxy"
    ref: str  # what FROM and containers.run use, e.g. roomquake/base:0123456789ab
    id: str
    built: bool  # False when it was already there
    seconds: float
    source: str  # base: "configured" | "pulled" | "debian"; services, proxy: "dockerfile"


def base_inputs_hash(config: ImageConfig) -> str:
    return combine(
        [
            ("recipe", RECIPE_VERSION),
            ("suite", config.suite),
            ("packages", ",".join(config.packages)),
            ("trim", ",".join(config.trim)),
            ("changes", json.dumps(IMPORT_CHANGES)),
        ]
    )


def local_image(client: docker.DockerClient, ref: str) -> Image | None:
    import docker

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.DockerException as exc:
        raise failure(exc, f"looking up image {ref}") from exc


def ensure_base(client: docker.DockerClient, config: ImageConfig, progress: Progress = lambda _: None) -> BuiltImage:
    """The base image to build services on; builds it only if it is missing."""
    started = time.monotonic()
    if config.base_image:
        found = local_image(client, config.base_image)
        if found is not None:
            return BuiltImage("base", config.base_image, id_of(found), False, time.monotonic() - started, "configured")
        if config.pull:
            pulled = _try_pull(client, config.base_image, progress)
            if pulled is not None:
                return BuiltImage("base", config.base_image, id_of(pulled), True, time.monotonic() - started, "pulled")
        else:
            progress(f"{config.base_image} is not present locally (ROOMQUAKE_PULL=1 would pull it); using a Debian base")
    inputs = base_inputs_hash(config)
    tag = f"{config.repository('base')}:{inputs[:12]}"
    found = local_image(client, tag)
    if found is not None:
        return BuiltImage("base", tag, id_of(found), False, time.monotonic() - started, "debian")
    image_id = build_debian_base(client, config, tag, inputs, progress)
    return BuiltImage("base", tag, image_id, True, time.monotonic() - started, "debian")


def _try_pull(client: docker.DockerClient, ref: str, progress: Progress) -> Image | None:
    import docker

    progress(f"pulling {ref}")
    try:
        return client.images.pull(ref)
    except docker.errors.DockerException as exc:
        progress(f"could not pull {ref} ({str(exc).splitlines()[0][:160]}); using a Debian base")
        return None


def check_can_build_debian_base(config: ImageConfig) -> None:
    """Clear one-line errors for what building with mmdebstrap needs."""
    if shutil.which("mmdebstrap") is None:
        raise EnvironmentProblem(
            "mmdebstrap is not installed; it builds the base image when no registry is reachable",
            hint="apt-get install -y mmdebstrap, or set ROOMQUAKE_BASE_IMAGE to a local Python image",
        )
    if os.geteuid() != 0:
        raise EnvironmentProblem(
            "building the base image from Debian packages needs root (mmdebstrap)",
            hint="run `sudo roomquake images build` once, or set ROOMQUAKE_BASE_IMAGE to a local Python image",
        )
    config.cache_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(config.cache_dir).free
    if free < MIN_FREE_BYTES:
        raise disk_full(
            f"preparing to build the base image: {free // 2**20} MiB free, about {MIN_FREE_BYTES // 2**20} MiB needed",
            str(config.cache_dir),
        )


def mmdebstrap_command(config: ImageConfig, target: Path) -> list[str]:
    command = ["mmdebstrap", "--variant=apt", "--include=" + ",".join(config.packages)]
    command += [f"--dpkgopt=path-exclude={pattern}" for pattern in config.trim]
    return [*command, config.suite, str(target)]


def build_debian_base(
    client: docker.DockerClient, config: ImageConfig, tag: str, inputs: str, progress: Progress
) -> str:
    """mmdebstrap a Debian root into a tarball and import it as ``tag``; its image id."""
    import docker

    check_can_build_debian_base(config)
    logs = config.cache_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"base-{inputs[:12]}.log"
    progress(f"building base {tag} from Debian {config.suite} packages with mmdebstrap (about a minute)")
    with tempfile.TemporaryDirectory(dir=config.cache_dir, prefix=".base-") as tmp:
        tarball = Path(tmp, "base.tar")
        with log_path.open("w") as log:
            result = subprocess.run(
                mmdebstrap_command(config, tarball), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        output = log_path.read_text(errors="replace")
        if result.returncode != 0:
            if "no space left on device" in output.lower():
                raise disk_full("building the base image with mmdebstrap", str(config.cache_dir))
            errors = [line for line in output.splitlines() if line.startswith("E:")] or output.splitlines()[-1:]
            raise EnvironmentProblem(
                f"mmdebstrap failed (exit {result.returncode}): {errors[0] if errors else 'no output'}",
                hint=f"it needs Debian's package mirror; full log: {log_path}",
            )
        progress(f"importing {tarball.stat().st_size // 2**20} MiB root filesystem as {tag}")
        repository, _, version = tag.rpartition(":")
        changes = [*IMPORT_CHANGES, f"LABEL {KIND}=base", f"LABEL {INPUTS}={inputs}"]
        try:
            answer = client.api.import_image_from_file(str(tarball), repository=repository, tag=version, changes=changes)
        except docker.errors.DockerException as exc:
            raise failure(exc, "importing the base image") from exc
        if '"error"' in str(answer):
            if is_disk_full(Exception(str(answer))):
                raise disk_full("importing the base image", "the Docker engine's data root")
            raise EngineError(f"docker import of the base image failed: {str(answer).strip()[:200]}")
    image = local_image(client, tag)
    if image is None:
        raise EngineError(f"docker import reported success but {tag} is missing")
    return id_of(image)
