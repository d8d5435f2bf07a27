"""
The fault matrix: every fault x every step, over real sockets against the emulator's fault
injection, with the outcome the catalogue (and ``docs/reliability.md``) promises.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from reliability_catalogue import FAULTS, STEPS, Expect, cells

from airflow_provider_gradient.testing.emulator.gradient_emulator import DEFAULT_TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CELLS = cells()


@pytest.mark.parametrize(
    ("fault_key", "step_key", "expect"),
    [pytest.param(fault.key, step.key, expect, id=f"{fault.key}-{step.key}") for fault, step, expect in CELLS],
)
def test_cell(matrix_runs: dict[tuple[str, str], Any], fault_key: str, step_key: str, expect: Expect) -> None:
    run = matrix_runs[(fault_key, step_key)]
    expect.check(run)


def test_the_matrix_is_complete() -> None:
    assert len(CELLS) == len(FAULTS) * len(STEPS) >= 65
    assert len({(fault.key, step.key) for fault, step, _ in CELLS}) == len(CELLS)


def test_no_cell_leaks_the_token(matrix_runs: dict[tuple[str, str], Any]) -> None:
    """Whatever a cell raised or returned (message, repr, pickle) carries no token."""
    leaks = []
    for key, run in matrix_runs.items():
        blobs = [repr(run.value), str(run.value), run.message]
        if run.error is not None:
            blobs += [repr(run.error), str(run.error), pickle.dumps(run.error).decode("latin-1")]
        if any(DEFAULT_TOKEN in blob for blob in blobs):
            leaks.append(key)
    assert leaks == []


def test_expectations_can_fail(matrix_runs: dict[tuple[str, str], Any]) -> None:
    """The assertions are not vacuous: a cell checked against another outcome fails."""
    success = matrix_runs[("503_burst", "poll_sync")]
    error = matrix_runs[("503_burst", "start")]
    with pytest.raises(AssertionError):
        Expect("", result="error:GradientAmbiguousStartError").check(success)
    with pytest.raises(AssertionError):
        Expect("").check(error)
    with pytest.raises(AssertionError):
        Expect("", posts=2).check(success)
    with pytest.raises(AssertionError):
        Expect("", phase="CANCELLED").check(success)
