"""Image build times: cold (from nothing), warm no-op, and a source-only change.

    .venv/bin/python bench/images.py            # cold + warm + change (about 2 minutes)
    .venv/bin/python bench/images.py --warm     # only the warm no-op on the real images

The cold build uses its own repository prefix and an empty cache folder, so
it downloads the wheels and runs mmdebstrap like a fresh machine, and it
removes only the images it built: the real roomquake/* images stay.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chaos.engine import connect  # noqa: E402
from chaos.images import ImageConfig, ensure_images  # noqa: E402
from chaos.images.hashing import stage_tree  # noqa: E402
from chaos.images.wheels import ensure_wheels  # noqa: E402


def snapshot(dest: Path) -> Path:
    """A frozen copy of the checkout's image inputs (others may be editing the tree)."""
    for name in ("chaos", "docker/audioroom"):
        stage_tree(ROOT / name, dest / name)
    for name in ("docker/Dockerfile.services", "pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, dest / name)
    return dest


def timed(client, config: ImageConfig) -> tuple[float, dict[str, float]]:
    started = time.monotonic()
    images = ensure_images(client, config)
    total = time.monotonic() - started
    return total, {image.kind: round(image.seconds, 2) for image in (images.base, images.services)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warm", action="store_true", help="only time a no-op build of the real images")
    args = parser.parse_args()
    client = connect()
    if args.warm:
        ensure_images(client)  # make sure they exist
        runs = [timed(client, ImageConfig())[0] for _ in range(5)]
        print(json.dumps({"warm_noop_s": {"min": round(min(runs), 3), "max": round(max(runs), 3)}}))
        return
    prefix = f"roomquake-bench-{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="rq-bench-") as tmp:
        config = ImageConfig(root=snapshot(Path(tmp, "checkout")), cache_dir=Path(tmp, "cache"), prefix=prefix, base_image=None)
        try:
            started = time.monotonic()
            ensure_wheels(config)  # timed apart: it is the only part that needs PyPI
            wheels = time.monotonic() - started
            cold, cold_parts = timed(client, config)
            cold_parts["wheels"] = round(wheels, 2)
            cold += wheels
            warm = [timed(client, config)[0] for _ in range(5)]
            (config.root / "docker/audioroom/__init__.py").write_text('"""bench: a source change"""\n')
            change, change_parts = timed(client, config)
        finally:
            for kind in ("services", "base"):
                for image in client.images.list(name=f"{prefix}/{kind}"):
                    for tag in image.tags:
                        client.images.remove(tag)
    figures = {
        "cold_total_s": round(cold, 1),
        "cold_parts_s": cold_parts,
        "warm_noop_s": {"min": round(min(warm), 3), "max": round(max(warm), 3)},
        "source_change_s": round(change, 1),
        "source_change_parts_s": change_parts,
        "cores": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 1),  # the machine is shared: read figures with it
    }
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
