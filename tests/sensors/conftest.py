"""Fixtures of the sensor tests: see ``tests/task_support.py``."""

from __future__ import annotations

from task_support import MemoryStore, RecordingTI, conn, connect, emu, make_context

__all__ = ["MemoryStore", "RecordingTI", "conn", "connect", "emu", "make_context"]
