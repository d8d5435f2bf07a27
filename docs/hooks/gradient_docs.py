"""
MkDocs hooks of the documentation build (``mkdocs.yml`` → ``hooks:``).

Directives, written as HTML comments in the Markdown pages:

``<!-- example: example_dags/FILE.py NAME -->``
    The code between ``# [START NAME]`` and ``# [END NAME]`` of that file, as a Python block: the
    docs show the example DAGs the test suite runs, never a copy that could drift.
``<!-- include: PATH -->``
    A file of the repository, verbatim (the changelog).
``<!-- connection-extras -->``
    The table of the connection's extra fields, built from
    ``airflow_provider_gradient._conn_fields.EXTRA_FIELDS``.

Relative links to repository files outside ``docs/`` (``../example_dags/x.py``) become links to
the file on GitHub. A directive naming a missing file or marker fails the build.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
_EXAMPLE = re.compile(r"<!--\s*example:\s*(\S+)\s+(\w+)\s*-->")
_INCLUDE = re.compile(r"<!--\s*include:\s*(\S+)\s*-->")
_EXTRAS = re.compile(r"<!--\s*connection-extras\s*-->")
_LINK = re.compile(r"\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")


def example_snippet(relative_path: str, name: str) -> str:
    """The dedented code between ``# [START name]`` and ``# [END name]`` of a repository file."""
    path = ROOT / relative_path
    if not path.is_file():
        raise PluginError(f"docs: example file {relative_path} does not exist")
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == f"# [START {name}]"]
    ends = [i for i, line in enumerate(lines) if line.strip() == f"# [END {name}]"]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise PluginError(f"docs: {relative_path} needs exactly one '# [START {name}]' ... '# [END {name}]' pair")
    body = [line for line in lines[starts[0] + 1 : ends[0]] if not re.match(r"\s*# \[(START|END) \w+\]", line)]
    return textwrap.dedent("\n".join(body)).strip("\n")


def connection_extras_table() -> str:
    """The connection's extras as a Markdown table (name, type, default, meaning)."""
    from airflow_provider_gradient._conn_fields import EXTRA_FIELDS

    rows = ["| Extra | Type | Default | What it does |", "| --- | --- | --- | --- |"]
    for name, (kind, default, description) in EXTRA_FIELDS.items():
        shown = "—" if default is None else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        rows.append(f"| `{name}` | {kind} | {shown} | {description.replace('|', '&#124;')} |")
    return "\n".join(rows)


def _example(match: re.Match[str]) -> str:
    relative_path, name = match.group(1), match.group(2)
    code = example_snippet(relative_path, name)
    return f'```python title="{relative_path}"\n{code}\n```'


def _include(match: re.Match[str]) -> str:
    path = ROOT / match.group(1)
    if not path.is_file():
        raise PluginError(f"docs: included file {match.group(1)} does not exist")
    return path.read_text()


def _link(page_path: Path, repo_url: str) -> Any:
    def replace(match: re.Match[str]) -> str:
        target = (page_path.parent / match.group(1)).resolve()
        docs_dir = ROOT / "docs"
        if docs_dir in target.parents or not target.exists() or ROOT not in target.parents:
            return match.group(0)
        relative = target.relative_to(ROOT).as_posix()
        kind = "tree" if target.is_dir() else "blob"
        return f"]({repo_url}/{kind}/main/{relative}{match.group(2) or ''})"

    return replace


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Expand the directives and point links to repository files at GitHub."""
    markdown = _INCLUDE.sub(_include, markdown)
    markdown = _EXAMPLE.sub(_example, markdown)
    markdown = _EXTRAS.sub(lambda _: connection_extras_table(), markdown)
    page_path = ROOT / "docs" / page.file.src_path
    repo_url = str(config.get("repo_url") or "").rstrip("/")
    return _LINK.sub(_link(page_path, repo_url), markdown)
