"""
Every docs page shows its full content as plain Markdown (on GitHub as in the site): what is built
from the code is written into the page (``make docs-render``), and each page equals its rendering.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "hooks" / "gradient_docs.py"
_spec = importlib.util.spec_from_file_location("gradient_docs", SCRIPT)
assert _spec is not None
assert _spec.loader is not None
gradient_docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gradient_docs)
PAGES = gradient_docs.pages()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT / "docs").as_posix())
def test_the_committed_page_is_its_rendering(page: Path) -> None:
    text = page.read_text()
    assert gradient_docs.render(text) == text, f"{page.name} is stale: run make docs-render"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT / "docs").as_posix())
def test_no_content_depends_on_the_site_build(page: Path) -> None:
    text = page.read_text()
    assert not re.search(r"^:::", text, re.M), "a mkdocstrings directive shows as an empty section on GitHub"
    assert not re.search(r"<!--\s*(example|include|connection-extras)\b", text), "an unexpanded directive"
    assert not re.search(r"--8<--|\{%\s*include", text), "a snippet include shows as nothing on GitHub"
    assert text.count("<!-- generated:") == text.count("<!-- /generated -->")


def test_generated_blocks_follow_the_code() -> None:
    """A parameter documented in a docstring shows in the page; a wrong directive is an error."""
    page = (ROOT / "docs" / "operators" / "start.md").read_text()
    assert "| `knowledge_base_name` | `None` |" in page
    assert "| `poll_interval` | `30.0` |" in page
    examples = (ROOT / "docs" / "examples.md").read_text()
    assert "GradientStartIndexingJobOperator.partial(" in examples
    with pytest.raises(gradient_docs.DocsError, match="needs exactly one"):
        gradient_docs.render(
            "<!-- generated: example example_dags/gradient_data_pipeline.py nope -->\n<!-- /generated -->"
        )
    with pytest.raises(gradient_docs.DocsError, match="unknown directive"):
        gradient_docs.render("<!-- generated: bogus -->\n<!-- /generated -->")
    stale = "<!-- generated: connection-extras -->\nold table\n<!-- /generated -->"
    assert "old table" not in gradient_docs.render(stale)
    assert "| `requests_per_minute` |" in gradient_docs.render(stale)


def test_the_check_mode_of_the_script_agrees() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_relative_link_of_the_readme_and_the_docs_exists() -> None:
    broken = []
    for page in [ROOT / "README.md", ROOT / "CHANGELOG.md", *PAGES]:
        for target in re.findall(r"\]\((?![a-z]+:|#)([^)\s#]+)", page.read_text()):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert not broken, broken


def test_the_tuning_numbers_have_one_home() -> None:
    """The poll-interval rule and the cost of a job are stated on docs/tuning.md only, from the code."""
    import dataclasses

    from airflow_provider_gradient._polling import FIRST_POLL_FRACTION, GROWTH
    from airflow_provider_gradient._settings import ClientSettings
    from airflow_provider_gradient.hooks._budget import RequestBudget

    times = "\N{MULTIPLICATION SIGN}"
    rule = re.compile(rf"\d(?:\.\d+)?\s*(?:s\s*)?[{times}x]\s*\*?N\b")  # "1.2 times N", "0.8 s times N"
    formula = re.compile(r"/\s*`?poll_interval`?\s*\+\s*\d")  # "T / poll_interval + 5"
    elsewhere = [
        f"{page.relative_to(ROOT)}: {match.group(0)}"
        for page in [ROOT / "README.md", *PAGES]
        if page.name != "tuning.md"
        for pattern in (rule, formula)
        for match in pattern.finditer(page.read_text())
    ]
    assert not elsewhere, f"state tuning numbers in docs/tuning.md and link to it: {elsewhere}"

    tuning = (ROOT / "docs" / "tuning.md").read_text()
    hourly = {field.name: field.default for field in dataclasses.fields(ClientSettings)}["requests_per_hour"]
    headroom = inspect.signature(RequestBudget).parameters["headroom"].default
    sustained = hourly * headroom  # what one token sustains an hour
    assert f"{sustained:,.0f} requests an hour" in tuning
    factor = 3600 / (sustained * 2 / 3)  # the steady load kept at two thirds of it
    assert f"**`poll_interval` (seconds) \N{GREATER-THAN OR EQUAL TO} {factor:.1f} {times} *N***" in tuning
    assert f"`poll_interval / {round(1 / FIRST_POLL_FRACTION)}`" in tuning
    assert f"{GROWTH} times longer" in tuning


def test_every_install_command_works_today() -> None:
    """No page tells a user to install the package from the index before a release exists there."""
    from airflow_provider_gradient import __version__

    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.search(rf"^## \[{re.escape(__version__)}\]", changelog, re.M) is not None
    wrong = [
        f"{page.relative_to(ROOT)}: {match.group(0)}"
        for page in [ROOT / "README.md", *PAGES]
        if page.name != "releasing.md"
        for match in re.finditer(r"pip install \"?airflow-provider-gradient\b[^\s`]*", page.read_text())
    ]
    assert released or not wrong, f"not on the package index yet: install from a clone or a wheel: {wrong}"
