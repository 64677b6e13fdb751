"""The building blocks every part of an experiment file's model is made of.

A leaf module: the experiment model (chaos.experiment.model) and the fault
modules (chaos.faults), whose models the experiment model collects, both
build on it, so neither needs the other to define a field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from chaos.experiment.durations import Duration

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")]
Fraction = Annotated[float, Field(gt=0, le=1)]
Toxicity = Annotated[float, Field(ge=0, le=1)]


class Strict(BaseModel):
    """Every mapping forbids unknown keys: a typo is an error with a suggestion, never silently ignored."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, defer_build=True)


class StepBase(Strict):
    """What every method step has."""

    id: Name | None = Field(None, description="name for messages, after/during references")
    at: Duration | None = Field(
        None, description="start, from the method's start (default: when the previous step ends)"
    )
    description: str | None = None
