"""
GradientIndexingJobSensor in reschedule mode: its ``timeout`` counts from the first try, across
reschedules, and never cancels the job. The first try's time is what the task instance reports
(``get_first_reschedule_date``), so no test waits for the clock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException
from task_support import RecordingTI

from airflow_provider_gradient.sensors.indexing_job import GradientIndexingJobSensor
from airflow_provider_gradient.testing.emulator import GradientEmulator

try:  # newer Airflow (not in 3.0)
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 3.0
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef,attr-defined]

TIMEOUT = 60.0


class RescheduledTI(RecordingTI):
    """A task instance whose first try was ``ago`` seconds before now."""

    def __init__(self, emu: GradientEmulator, ago: float) -> None:
        super().__init__(emu)
        self.first_try = datetime.now(timezone.utc) - timedelta(seconds=ago)

    def get_first_reschedule_date(self, context: Any) -> datetime:  # type: ignore[override]
        return self.first_try


def running_job(emu: GradientEmulator) -> str:
    kb = emu.create_knowledge_base()
    emu.script_jobs(kb.uuid, duration=600, pending=0)
    return emu.start_job_server_side(kb.uuid)


def sense(
    emu: GradientEmulator, job: str, ago: float, make_context: Callable[..., dict[str, Any]], **kwargs: Any
) -> Any:
    sensor = GradientIndexingJobSensor(
        task_id="sense", indexing_job_uuid=job, mode="reschedule", poke_interval=5, timeout=TIMEOUT, **kwargs
    )
    return sensor.execute(make_context(ti=RescheduledTI(emu, ago)))


def test_a_reschedule_within_the_timeout_pokes_again(
    emu: GradientEmulator, conn: str, make_context: Callable[..., dict[str, Any]]
) -> None:
    job = running_job(emu)
    with pytest.raises(AirflowRescheduleException):
        sense(emu, job, TIMEOUT - 10, make_context)
    assert emu.count("GET", "genai_get_indexing_job") == 1


@pytest.mark.parametrize(("soft_fail", "expected"), [(False, AirflowSensorTimeout), (True, AirflowSkipException)])
def test_a_reschedule_past_the_timeout_times_out_and_never_cancels(
    emu: GradientEmulator,
    conn: str,
    make_context: Callable[..., dict[str, Any]],
    soft_fail: bool,
    expected: type[Exception],
) -> None:
    """
    The first try was longer ago than ``timeout``: the sensor times out (a skip with ``soft_fail``)
    and the job keeps running. (Measuring the timeout from each reschedule instead of the first
    try, or cancelling on timeout, turns this red.)
    """
    job = running_job(emu)
    with pytest.raises(expected):
        sense(emu, job, TIMEOUT + 1, make_context, soft_fail=soft_fail)
    assert emu.count("PUT", "genai_cancel_indexing_job") == 0
    assert emu.job(job)["phase"] == "BATCH_JOB_PHASE_RUNNING"
