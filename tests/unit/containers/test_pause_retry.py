"""pause_retrying: the freezer's "unable to freeze" is asked again a bounded number of times; other errors are not."""

from __future__ import annotations

import docker
import pytest

from chaos.stack.containers import PAUSE_ATTEMPTS, pause_retrying


def _pause_failing(times: int, message: str) -> tuple[list[int], object]:
    calls: list[int] = []

    def pause() -> None:
        calls.append(1)
        if len(calls) <= times:
            raise docker.errors.APIError(message)

    return calls, pause


def test_unable_to_freeze_is_tried_again_until_it_pauses() -> None:
    calls, pause = _pause_failing(2, "Cannot pause container x: unable to freeze")
    pause_retrying(pause)  # type: ignore[arg-type]
    assert len(calls) == 3


def test_the_freezer_giving_up_every_time_is_the_last_error() -> None:
    calls, pause = _pause_failing(10_000, "Cannot pause container x: unable to freeze")
    with pytest.raises(docker.errors.APIError, match="unable to freeze"):
        pause_retrying(pause)  # type: ignore[arg-type]
    assert len(calls) == PAUSE_ATTEMPTS


def test_another_refusal_is_not_tried_again() -> None:
    calls, pause = _pause_failing(1, "Container x is not running")
    with pytest.raises(docker.errors.APIError, match="not running"):
        pause_retrying(pause)  # type: ignore[arg-type]
    assert len(calls) == 1
