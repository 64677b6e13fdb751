"""Helpers: write a Compose project into a folder and import it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from chaos.compose.convert import convert
from chaos.compose.services import read_service
from chaos.compose.source import load_project


class ProjectDir:
    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def dockerfile(self, folder: str = ".") -> None:
        self.write(f"{folder}/Dockerfile", "FROM roomquake/compose-base:latest\n")

    def compose(self, text: str, name: str = "docker-compose.yml") -> Path:
        return self.write(name, text)

    def project(self, *names: str, environ: dict[str, str] | None = None):
        files = [self.root / n for n in (names or ("docker-compose.yml",))]
        return load_project(files, environ=environ or {})

    def service(self, name: str, environ: dict[str, str] | None = None):
        return read_service(self.project(environ=environ), name, environ or {})

    def imported(self, environ: dict[str, str] | None = None):
        return convert(self.project(environ=environ), self.root, environ or {})


@pytest.fixture
def proj(tmp_path: Path) -> ProjectDir:
    return ProjectDir(tmp_path)
