"""
Small stand-ins shared by the reliability tests: a task instance that records XCom pushes, task
state stores (in memory, and file-backed so that a killed process's writes survive), and
connection helpers pointing at an emulator.

They stand in for Airflow's own objects only; the provider's code under test is always real.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow_provider_gradient.testing.emulator import GradientEmulator

#: Extras of every reliability connection: no client-side pacing (the tests poll fast).
UNPACED = {"requests_per_minute": 100_000, "requests_per_hour": 1_000_000}


class RecordingTI:
    """Records ``xcom_push`` calls; enough of a task instance for poke/sync execution."""

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


class MemoryStore:
    """The task state store's get/set/delete, in memory."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


class FileStore(MemoryStore):
    """A task state store kept in a JSON file, written through (as the real one is, in the DB)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        super().__init__(json.loads(self.path.read_text()) if self.path.exists() else {})

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data))
        os.replace(tmp, self.path)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        super().set(key, value)
        self._write()

    def delete(self, key: str) -> None:
        super().delete(key)
        self._write()


def context(*, store: MemoryStore | None = None, try_number: int = 1, **extra: Any) -> dict[str, Any]:
    """A task context with a recording ``ti`` and (unless ``store`` is None) a task state store."""
    ctx: dict[str, Any] = {"ti": RecordingTI(try_number), **extra}
    if store is not None:
        ctx["task_state_store"] = store
    return ctx


def conn_json(emu: GradientEmulator, token: str | None = None, **extra: Any) -> str:
    """The JSON connection (``AIRFLOW_CONN_*`` value) to ``emu``, unpaced, with these extras."""
    return json.dumps(
        {
            "conn_type": "gradient",
            "host": emu.base_url,
            "password": token or emu.token,
            "extra": {**UNPACED, **extra},
        }
    )


def env_name(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"
