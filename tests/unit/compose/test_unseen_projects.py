"""Compose files the importer was not written against (tests/docker/compose/projects, shaped like public
examples): what is routed through the proxy, what is listed as not interposed, what is carried over."""

from __future__ import annotations

from pathlib import Path

from chaos.compose import import_compose
from chaos.stack import load_stack

PROJECTS = Path(__file__).resolve().parents[2] / "docker" / "compose" / "projects"


def imported(tmp_path: Path, project: str):
    out = tmp_path / project / "stack.yaml"
    report = import_compose([PROJECTS / project / "docker-compose.yml"], out, environ={})
    return report, load_stack(out).spec, out.read_text()


def test_counter_an_address_in_the_apps_code_is_listed_not_interposed(tmp_path: Path) -> None:
    report, spec, text = imported(tmp_path, "counter")
    assert report.services == ["web", "redis"] and report.links == []
    assert report.unrouted == [
        "web -> redis (depends_on): web -> redis is declared in depends_on, but no address of redis was found in "
        "web's environment or command: not interposed (web reaches redis directly by its name)"]
    web, redis = spec.services["web"], spec.services["redis"]
    assert web.port == 5000 and web.health.kind == "tcp"  # EXPOSE of its Dockerfile; no healthcheck
    assert web.depends_on == {"redis": "started"}
    assert [(m.target, m.read_only) for m in web.container.mounts] == [("/code", False)]
    assert (tmp_path / "counter" / spec.images["web"].context.path).resolve() == PROJECTS / "counter"  # built offline
    assert spec.images["redis"].tag == "roomquake/compose-base:latest"  # used as present, never pulled
    assert redis.port == 6379 and redis.health.kind == "tcp"  # redis-server in its command; no healthcheck
    assert "Not interposed" in text and "127.0.0.1:8000->5000" in text


def test_notes_database_url_routed_secret_file_mounted_networks_merged(tmp_path: Path) -> None:
    report, spec, text = imported(tmp_path, "notes")
    assert report.links == ["web->db"] and report.unrouted == [] and report.dropped == []
    web, db = spec.services["web"], spec.services["db"]
    assert web.env["DATABASE_URL"] == "postgresql://notes:notes@{route:db}/notes"
    assert web.depends_on == {"db": "healthy"} and web.restart == "on-failure"
    assert [(m.target, m.read_only) for m in db.container.mounts] == [("/run/secrets/db-password", True)]
    assert db.env["POSTGRES_PASSWORD_FILE"] == "/run/secrets/db-password"
    assert db.volume == "/var/lib/postgresql/data" and db.port == 5432
    assert "link web->db: environment.DATABASE_URL rewritten to the proxy's listener" in text


def test_a_secret_that_is_not_a_file_is_listed_as_not_carried_over(proj) -> None:
    proj.dockerfile("app")
    proj.write("key.txt", "k\n")
    proj.compose("""\
        version: "3.8"
        services:
          app:
            build: app
            secrets: [from_file, {source: from_swarm, target: api-key}]
        secrets:
          from_file: {file: ./key.txt}
          from_swarm: {external: true}
        """)
    stack = proj.imported().stack
    app = stack["services"]["app"]
    assert app["container"]["mounts"] == [{"source": "./key.txt", "target": "/run/secrets/from_file", "read_only": True}]
    dropped = proj.imported().dropped
    assert any("app.secrets: from_swarm: only secrets from a file are carried over" in d for d in dropped), dropped
