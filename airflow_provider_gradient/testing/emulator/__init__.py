"""A local emulator of the DigitalOcean Gradient indexing-job API (Starlette + uvicorn).

>>> from airflow_provider_gradient.testing.emulator import GradientEmulator
>>> with GradientEmulator(speed=600) as emu:  # doctest: +SKIP
...     kb = emu.create_knowledge_base("docs", data_sources=2)

See ``docs/emulator.md``.
"""

from __future__ import annotations

from airflow_provider_gradient.testing.emulator.errors import ApiError
from airflow_provider_gradient.testing.emulator.faults import FAULT_KINDS, Fault
from airflow_provider_gradient.testing.emulator.gradient_emulator import (
    DEFAULT_TOKEN,
    GradientEmulator,
    KnowledgeBaseHandle,
)
from airflow_provider_gradient.testing.emulator.jobs import OUTCOMES
from airflow_provider_gradient.testing.emulator.requestlog import RecordedRequest

__all__ = [
    "DEFAULT_TOKEN",
    "FAULT_KINDS",
    "OUTCOMES",
    "ApiError",
    "Fault",
    "GradientEmulator",
    "KnowledgeBaseHandle",
    "RecordedRequest",
]
