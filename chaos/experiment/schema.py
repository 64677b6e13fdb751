"""JSON Schema of experiment files, for editors (YAML language servers read it too)."""

from __future__ import annotations

import json
from typing import Any

from chaos.experiment.model import Experiment

SCHEMA_ID = "https://roomquake.dev/schema/experiment.json"


def experiment_schema() -> dict[str, Any]:
    schema = Experiment.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
        "title": "roomquake experiment",
        "description": "A chaos experiment: stack, load, steady state, a method on a timeline, "
        "recovery assertions and abort conditions.",
    }


def schema_text() -> str:
    return json.dumps(experiment_schema(), indent=2, sort_keys=False) + "\n"
