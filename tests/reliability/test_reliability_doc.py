"""docs/reliability.md is the rendering of the catalogue, and every test it cites exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from reliability_catalogue import FAULTS, SCENARIOS, STEPS
from render_matrix import DOC, render

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_document_is_the_rendering() -> None:
    assert DOC.read_text() == render(), "docs/reliability.md is stale: run python tests/reliability/render_matrix.py"


def test_the_check_mode_of_the_script_agrees() -> None:
    script = Path(__file__).with_name("render_matrix.py")
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_every_fault_and_step_is_in_the_document() -> None:
    text = DOC.read_text()
    for fault in FAULTS:
        assert fault.title.replace("|", "\\|") in text
    for step in STEPS:
        assert f"### {step.title}" in text


@pytest.mark.parametrize("ref", sorted({test for scenario in SCENARIOS for test in scenario.tests}), ids=str)
def test_every_cited_test_exists(ref: str) -> None:
    path, name = ref.split("::")
    source = (ROOT / path).read_text()
    function = re.sub(r"\[.*\]$", "", name)
    assert re.search(rf"^(async )?def {re.escape(function)}\(", source, re.M), f"{ref} does not exist"
