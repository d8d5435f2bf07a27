"""The real Airflow API server the connection-form tests talk to (one per module)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from _api_server import AirflowApiServer, running_api_server


@pytest.fixture(scope="module")
def airflow_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowApiServer]:
    """``airflow api-server`` with a migrated SQLite DB, all-admin simple auth, Test connection on."""
    root: Path = tmp_path_factory.mktemp("airflow-api-server")
    with running_api_server(root) as server:
        yield server
