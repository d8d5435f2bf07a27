"""CLI smoke test: start the module as a subprocess, read what it prints, use it, stop it."""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
import requests

from airflow_provider_gradient.testing.emulator import GradientEmulator
from airflow_provider_gradient.testing.emulator.__main__ import parse_kb_spec


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 20.0) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} not printed; got {lines}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_and_stops(stop_signal: int) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_gradient.testing.emulator",
            "--port",
            "0",
            "--token",
            "cli-token",
            "--seed",
            "3",
            "--speed",
            "60",
            "--kb",
            "docs:2",
            "--kb",
            "faq",
            "--rate-limit-per-minute",
            "7",
            "--rate-limit-headers",
            "hourly",
            "--list-order",
            "oldest",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = _read_until(process, "Press Ctrl+C")
        match = re.search(r"listening on (http://\S+)", lines[0])
        assert match is not None
        base_url = match.group(1)
        kb_lines = [line for line in lines if line.startswith("knowledge base ")]
        assert len(kb_lines) == 2
        kb_uuid = kb_lines[0].split()[3]
        # the same seed in-process yields the same uuids: demos are reproducible
        expected = GradientEmulator(seed=3).create_knowledge_base("docs", data_sources=2)
        assert kb_lines[0].split()[3:] == [expected.uuid, "data", "sources:", *expected.data_source_uuids]
        export = next(line for line in lines if line.startswith("export AIRFLOW_CONN_GRADIENT_DEFAULT="))
        conn = json.loads(shlex.split(export.split("=", 1)[1])[0])
        assert conn == {"conn_type": "gradient", "host": base_url, "password": "cli-token"}
        response = requests.get(
            f"{base_url}/v2/gen-ai/knowledge_bases/{kb_uuid}",
            headers={"Authorization": "Bearer cli-token"},
            timeout=5,
        )
        assert response.status_code == 200
        assert response.headers["ratelimit-remaining"] == "4999"  # hourly headers, whatever the minute limit
        body = response.json()
        assert body["knowledge_base"]["name"] == "docs"
        assert body["database_status"] == "ONLINE"
        order = requests.get(f"{base_url}/_emulator/list_order", timeout=5).json()
        assert order == {"list_order": "oldest"}
        assert "jobs listed oldest first" in lines[0]
    finally:
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err


def test_parse_kb_spec() -> None:
    assert parse_kb_spec("docs") == ("docs", 1)
    assert parse_kb_spec("docs:3") == ("docs", 3)
    with pytest.raises(argparse.ArgumentTypeError):
        parse_kb_spec("docs:x")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_kb_spec(":2")
