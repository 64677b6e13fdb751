from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from chaos.cli.main import cli
from chaos.experiment import model as m
from chaos.yamldoc import parse_text
from chaos.experiment.schema import experiment_schema
from chaos.experiment.validate import ExperimentInvalid, load_experiment, validate_text

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = sorted((ROOT / "experiments").glob("*.yaml"))

GOOD = """
title: Losing the edge that hosts a live room relaunches it elsewhere
tags: [server-loss, relaunch]
scale: {edge: 3, supervisor: 4}
seed: 7
load: {room: launch, listeners: 50, ramp: 2s}
steady_state:
  - {probe: room.state, expect: live}
  - {probe: crowd.connected_ratio, expect: ">= 0.95"}
method:
  - id: kill-edge
    at: 5s
    fault: kill
    target: {service: edge, hosting: launch}
  - at: 5s
    id: slow-state
    fault: latency
    link: edge->state
    latency: 300ms
    jitter: 50ms
    for: 20s
  - probe: room.state
    expect: live
    during: slow-state
  - parallel:
      - {fault: pause, target: {service: supervisor, count: 1}, for: 1s}
      - {fault: down, link: crowd->edge-2, at: 500ms, for: 1s}
  - wait: 1s
recovery:
  - {id: relaunched, probe: room.relaunches, expect: ">= 1", within: 10s, after: kill-edge}
  - {probe: crowd.connected_ratio, expect: ">= 0.9", within: 30s}
  - {probe: room.state, expect: live, throughout: 5s}
abort_if:
  - {probe: crowd.connected_ratio, expect: "< 0.05", for: 1s}
"""


def test_good_experiment_is_typed() -> None:
    experiment, problems = validate_text(GOOD, "good.yaml")
    assert problems == []
    assert experiment is not None
    kill, latency, check, parallel, wait = experiment.method
    assert isinstance(kill, m.FAULTS["kill"]) and kill.at == 5.0 and kill.target.hosting == "launch"
    assert isinstance(latency, m.FAULTS["latency"]) and latency.latency == pytest.approx(0.3) and latency.for_ == 20.0
    assert isinstance(check, m.CheckStep) and check.during == "slow-state"
    assert isinstance(parallel, m.ParallelStep) and isinstance(parallel.parallel[1], m.FAULTS["down"])
    assert isinstance(wait, m.WaitStep) and wait.wait == 1.0
    assert experiment.recovery[0].within == 10.0 and experiment.recovery[0].expect.holds(1)
    assert experiment.abort_if[0].for_ == 1.0
    assert experiment.load is not None and experiment.load.ramp == 2.0


def test_json_is_accepted_too() -> None:
    experiment, problems = validate_text(json.dumps({"title": "t", "method": [{"wait": "1s"}]}), "x.json")
    assert problems == [] and experiment is not None


def test_all_errors_at_once_with_positions() -> None:
    text = "title: t\nsettle: 3x\nmethod:\n  - fault: kil\n    target: {service: edge}\n  - wait: soon\n"
    _, problems = validate_text(text, "f.yaml")
    assert [(p.line, p.col, p.field) for p in problems] == [
        (2, 9, "settle"),
        (4, 12, "method[0].fault"),
        (6, 11, "method[1].wait"),
    ]
    assert "did you mean 'kill'" in problems[1].message


def test_load_experiment_raises_with_every_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: t\nfoo: 1\nbar: 2\n")
    with pytest.raises(ExperimentInvalid) as caught:
        load_experiment(bad)
    assert len(caught.value.problems) == 2
    assert "and 1 more" in caught.value.one_line()


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ExperimentInvalid, match="no such experiment file"):
        load_experiment(tmp_path / "nope.yaml")


def test_positions_index_keys_and_items() -> None:
    doc = parse_text("a:\n  - x: 1\n  - y: [1, 2]\n")
    assert doc.positions.of_key(("a", 1, "y")) == (3, 5)
    assert doc.positions.of_value(("a", 1, "y", 1)) == (3, 12)
    assert doc.positions.of_value(("a", 1, "nope")) == (3, 5)


def test_schema_is_valid_and_accepts_the_good_file() -> None:
    schema = experiment_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    data = parse_text(GOOD).data
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"title": "t", "tagz": []}, schema)
    assert set(m.FAULTS) <= set(json.dumps(schema).replace('"', " ").split())


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_experiments_are_valid(path: Path) -> None:
    load_experiment(path)
    jsonschema.validate(parse_text(path.read_text()).data, experiment_schema())


def test_cli_validate_schema_list(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: t\nmethd: []\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["validate", str(good), str(bad)])
    assert result.exit_code == 2  # invalid input, as for run
    assert f"{good}: ok" in result.output
    assert f"{bad}:2:1: methd: unknown key; did you mean 'method'?" in result.output
    assert runner.invoke(cli, ["validate", str(good)]).exit_code == 0
    schema = runner.invoke(cli, ["schema"])
    assert schema.exit_code == 0 and json.loads(schema.output)["title"] == "roomquake experiment"
    listing = runner.invoke(cli, ["list", str(tmp_path)])
    assert "Losing the edge" in listing.output and "bad.yaml" in listing.output and "INVALID" in listing.output
