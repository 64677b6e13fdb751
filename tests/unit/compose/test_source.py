"""Reading Compose files: versions, the legacy format, overrides, extends, anchors, located errors."""

from __future__ import annotations

import pytest

from chaos.compose.source import ComposeFileError, find_files, project_name


def test_version_2_3_spec_and_legacy_formats(proj):
    for version in ('version: "2.4"\n', 'version: "3.8"\n', ""):
        proj.compose(version + "services:\n  web:\n    image: nginx\n")
        project = proj.project()
        assert list(project.services) == ["web"]
        assert project.versions == [version.split('"')[1] if version else "spec"]
    proj.compose("web:\n  image: nginx\n  links: [db]\ndb:\n  image: postgres\n")
    project = proj.project()
    assert project.versions == ["1"] and list(project.services) == ["web", "db"]
    assert ":2:10" in project.where("web", "image")


def test_override_file_merges_by_compose_rules(proj):
    proj.compose("""\
        services:
          web:
            image: app
            command: serve
            environment: {A: "1", B: "1"}
            ports: ["8000"]
            volumes: ["./a:/data"]
        """)
    proj.compose("""\
        services:
          web:
            command: serve --debug
            environment: [B=2, C=3]
            ports: ["9000"]
            volumes: ["./b:/data"]
        """, "docker-compose.override.yml")
    assert [p.name for p in find_files(proj.root)] == ["docker-compose.yml", "docker-compose.override.yml"]
    web = proj.project("docker-compose.yml", "docker-compose.override.yml").services["web"]
    assert web["command"] == "serve --debug"
    assert web["environment"] == {"A": "1", "B": "2", "C": "3"}
    assert web["ports"] == ["8000", "9000"] and web["volumes"] == ["./b:/data"]


def test_extends_in_the_same_file_and_another(proj):
    proj.write("common.yml", "services:\n  base:\n    image: app\n    environment: {LEVEL: info}\n")
    proj.compose("""\
        version: "2.4"
        services:
          tmpl:
            image: app
            environment: {A: "1"}
            depends_on: [db]
          web:
            extends: tmpl
            environment: {B: "2"}
          other:
            extends: {file: common.yml, service: base}
          db:
            image: postgres
        """)
    services = proj.project().services
    assert services["web"]["environment"] == {"A": "1", "B": "2"} and "depends_on" not in services["web"]
    assert services["other"]["environment"] == {"LEVEL": "info"}


def test_anchors_aliases_and_merge_keys(proj):
    proj.compose("""\
        x-app: &app
          image: app
          environment: &env {A: "1"}
        services:
          web:
            <<: *app
            environment:
              <<: *env
              B: "2"
          worker: *app
        """)
    services = proj.project().services
    assert services["web"] == {"image": "app", "environment": {"A": "1", "B": "2"}}
    assert services["worker"] == {"image": "app", "environment": {"A": "1"}}


def test_variables_from_dotenv_and_the_shell(proj):
    proj.write(".env", "TAG=1.0\nPORT=8000\n")
    proj.compose("services:\n  web:\n    image: app:${TAG}\n    command: serve --port ${PORT} ${MISSING}\n")
    project = proj.project(environ={"PORT": "9000"})
    assert project.services["web"] == {"image": "app:1.0", "command": "serve --port 9000 "}
    assert project.unset_variables == {"MISSING"}


def test_project_name_as_docker_compose():
    from pathlib import Path

    assert project_name(Path("/x/My Shop_1")) == "myshop_1"
    assert project_name(Path("/x/a"), "Given") == "given"
    assert project_name(Path("/x/a"), environ={"COMPOSE_PROJECT_NAME": "fromenv"}) == "fromenv"


@pytest.mark.parametrize(("text", "where", "words"), [
    ("services:\n  web:\n    image: [1\n", ":4:", "not valid YAML"),
    ("services:\n  web: 3\n", ":2:8", "a service is a mapping"),
    ("version: '4'\nservices: {}\n", ":1:10", "not a version"),
    ("services:\n  web: {image: a}\nextras: 1\n", ":3:9", "unknown top-level key"),
    ("services:\n  web:\n    image: ${X:?give X}\n", ":3:12", "give X"),
    ("- a\n- b\n", ":1:1", "a mapping with services"),
    ("services:\n  a: {extends: b}\n  b: {extends: a}\n", ":2:", "cycle"),
])
def test_bad_files_are_one_located_line(proj, text, where, words):
    proj.compose(text)
    with pytest.raises(ComposeFileError) as err:
        proj.project()
    message = err.value.one_line()
    assert "docker-compose.yml" + where in message and words in message and "\n" not in message


def test_alias_bomb_is_refused(proj):
    rows = ["a: &a [1,1,1,1,1,1,1,1,1,1]"] + [f"{c}: &{c} [" + ",".join([f"*{p}"] * 10) + "]"
                                              for p, c in zip("abcd", "bcde")]
    proj.compose("\n".join(rows) + "\nservices: {}\n")
    with pytest.raises(ComposeFileError) as err:
        proj.project()
    assert "once aliases are expanded" in str(err.value)


def test_no_compose_file_in_a_folder(tmp_path):
    with pytest.raises(ComposeFileError) as err:
        find_files(tmp_path)
    assert "no Compose file" in str(err.value)
