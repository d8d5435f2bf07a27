"""Fixtures for the emulator tests (helpers live in ``_emu_helpers``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _emu_helpers import SPEC_PATH, Api
from openapi_core import OpenAPI

from airflow_provider_gradient.testing.emulator import GradientEmulator


@pytest.fixture(scope="session")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


@pytest.fixture
def emu(gradient_emulator: GradientEmulator) -> GradientEmulator:
    return gradient_emulator


@pytest.fixture
def api(emu: GradientEmulator, openapi: OpenAPI) -> Iterator[Api]:
    client = Api(emu, openapi)
    try:
        yield client
    finally:
        client.session.close()
