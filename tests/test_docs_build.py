"""
The documentation site builds with every warning an error, and says what the code does.

``mkdocs build --strict`` runs here (so ``make test``, the CI entry point, builds the docs); the
outcome table of ``docs/outcomes.md`` is checked row by row against ``models.classify`` and
``_outcome.finish``, and the connection page against ``_conn_fields.EXTRA_FIELDS``.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_gradient import _outcome
from airflow_provider_gradient._conn_fields import EXTRA_FIELDS
from airflow_provider_gradient.exceptions import GradientJobCancelledError, GradientJobError
from airflow_provider_gradient.models import IndexingJob, JobPhase, JobStatus, classify

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with ``mkdocs build --strict``."""
    pytest.importorskip("mkdocs", reason="docs dependencies: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    return out


def _text(page: Path) -> str:
    raw = page.read_text()
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", raw)))


def test_docs_build_strict(site: Path) -> None:
    for page in ("index.html", "connection/index.html", "operators/start/index.html", "changelog/index.html"):
        assert (site / page).is_file(), page


def test_connection_page_lists_every_extra(site: Path) -> None:
    text = _text(site / "connection" / "index.html")
    for name, (_kind, _default, description) in EXTRA_FIELDS.items():
        assert name in text, f"extra {name!r} is missing from the connection docs"
        assert description.split(".")[0] in text


def test_examples_are_included_not_copied(site: Path) -> None:
    # The examples page shows the code between the markers of the real example files.
    text = _text(site / "examples" / "index.html")
    assert "GradientStartIndexingJobOperator . partial" in text
    assert "schedule = [ DOCS_KNOWLEDGE_BASE ]" in text
    assert "<!-- generated:" not in text


def test_changelog_is_included(site: Path) -> None:
    first_entry = next(line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("- "))
    words = " ".join(re.findall(r"\w+", first_entry)[:8])
    assert words in " ".join(re.findall(r"\w+", _text(site / "changelog" / "index.html")))


# ------------------------------------------------------------------------------------------
# docs/outcomes.md tells the truth
# ------------------------------------------------------------------------------------------

_UNKNOWN_PHASE = "BATCH_JOB_PHASE_FROM_THE_FUTURE"
_UNKNOWN_STATUS = "INDEX_JOB_STATUS_FROM_THE_FUTURE"


def _values(cell: str, enum: Any, missing_unknown: tuple[str | None, str]) -> list[str | None]:
    """The phases or statuses a table cell stands for."""
    cell = cell.strip()
    if cell == "any":
        return [member.value for member in enum] + [None, missing_unknown[1]]
    values: list[str | None] = [enum[name].value for name in re.findall(r"`([A-Z_]+)`", cell)]
    if "missing" in cell:
        values.append(None)
    if "unknown" in cell:
        values.append(missing_unknown[1])
    assert values, f"cannot read cell {cell!r}"
    return values


def _task_result(phase: str | None, status: str | None) -> str:
    """What the shared rules do with a job in this state, in the words of the table."""
    event = _outcome.job_event(IndexingJob(uuid="00000000-0000-4000-8000-000000000001", phase=phase, status=status))
    if event is None:
        return "keeps waiting"
    try:
        _outcome.finish(event, fail_on_partial=False)
    except GradientJobCancelledError:
        return "fails, no retry"
    except GradientJobError:
        return "fails, retried"
    if event["status"] == "partial":
        with pytest.raises(GradientJobError):
            _outcome.finish(event, fail_on_partial=True)
        return "succeeds, warns"
    return "succeeds"


def _outcome_rows() -> list[list[str]]:
    text = (DOCS / "outcomes.md").read_text()
    section = text.split("## Phase and status → task result", 1)[1].split("\n## ", 1)[0]
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| `")
    ]
    assert len(rows) >= 8, "the outcome table is missing rows"
    return rows


def test_outcome_table_matches_classify_and_finish() -> None:
    covered: set[tuple[str | None, str | None]] = set()
    for phase_cell, status_cell, outcome_cell, task_cell in _outcome_rows():
        outcome = outcome_cell.strip("`")
        for phase in _values(phase_cell, JobPhase, (None, _UNKNOWN_PHASE)):
            for status in _values(status_cell, JobStatus, (None, _UNKNOWN_STATUS)):
                assert classify(phase, status).value == outcome, (phase, status)
                assert _task_result(phase, status) == task_cell, (phase, status)
                covered.add((phase, status))
    every_phase = [member.value for member in JobPhase] + [None, _UNKNOWN_PHASE]
    every_status = [member.value for member in JobStatus] + [None, _UNKNOWN_STATUS]
    missing = {(p, s) for p in every_phase for s in every_status} - covered
    assert not missing, f"the table does not say what happens for {sorted(missing, key=str)[:5]}"
