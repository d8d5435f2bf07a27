"""
Generated parts of the documentation pages, written into the Markdown files themselves.

A page reads the same on GitHub and in the site: what is built from the code (example code,
parameter tables, the API reference, the connection's extras, the changelog) lies in the page
between two markers, and ``tests/test_docs_pages.py`` checks that every page equals its rendering.

``<!-- generated: KIND ARGS -->`` ... ``<!-- /generated -->``, KIND being one of:

``example FILE NAME``
    The code between ``# [START NAME]`` and ``# [END NAME]`` of that file, as a Python block: the
    docs show the example DAGs the test suite runs, never a copy that could drift.
``include PATH``
    A file of the repository, verbatim (the changelog), its links made relative to ``docs/``.
``connection-extras``
    The table of the connection's extra fields, from ``_conn_fields.EXTRA_FIELDS``.
``parameters MODULE.CLASS``
    A table of the class's ``:param:`` fields, with the defaults of its signature.
``api MODULE [MEMBER ...]``
    The reference of a module's public members (default: its ``__all__``).

``python docs/hooks/gradient_docs.py`` (``make docs-render``) rewrites the pages; ``--check``
only reports the stale ones. In the site build (this file is also the MkDocs hook of
``mkdocs.yml``) a stale page fails the build, and relative links to repository files outside
``docs/`` (``../example_dags/x.py``) become links to the file on GitHub.
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
END = "<!-- /generated -->"
_BLOCK = re.compile(r"(<!-- generated: (?P<spec>[^>]*?) -->\n)(?P<body>.*?)(<!-- /generated -->)", re.S)
_LINK = re.compile(r"\]\((\.\./[^)\s#]+)(#[^)\s]*)?\)")
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`~?([^`<]+?)(?:\s*<[^>]+>)?`")
_FIELD = re.compile(r"^:(param|raises|returns|return)\s*([^:]*):\s*(.*)$")


class DocsError(Exception):
    """A directive that cannot be rendered (missing file, marker or member)."""


# ------------------------------------------------------------------------------------------------
# reST docstrings -> Markdown
# ------------------------------------------------------------------------------------------------


def _inline(text: str) -> str:
    """reST inline markup as Markdown: ``code``, roles (``:class:`~a.B``` -> ``B``)."""

    def role(match: re.Match[str]) -> str:
        target = match.group(1).strip()
        whole = match.group(0)
        shown = target.rsplit(".", 1)[-1] if ":`~" in whole else target
        return f"`{shown}`"

    return _ROLE.sub(role, text).replace("``", "`")


def _split(doc: str) -> tuple[list[str], list[tuple[str, str, str]]]:
    """A docstring's body lines and its fields (kind, name, text), continuation lines joined."""
    body: list[str] = []
    fields: list[tuple[str, str, str]] = []
    in_field = False
    for line in inspect.cleandoc(doc).splitlines():
        match = _FIELD.match(line)
        if match:
            fields.append((match.group(1), match.group(2).strip(), match.group(3).strip()))
            in_field = True
        elif in_field and (line.startswith(" ") or not line.strip()):
            if line.strip():
                kind, name, text = fields[-1]
                fields[-1] = (kind, name, f"{text} {line.strip()}")
        else:
            in_field = False
            body.append(line)
    return body, fields


def _body_markdown(lines: list[str]) -> str:
    """Body lines as Markdown: ``::`` literal blocks become Python blocks, ``.. seealso::`` a line."""
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.strip().startswith(".. seealso::"):
            out.append("See also: " + _inline(line.strip().removeprefix(".. seealso::").strip()))
            index += 1
            continue
        if line.rstrip().endswith("::"):
            out.append(_inline(line.rstrip()[:-1]))
            index += 1
            block: list[str] = []
            while index < len(lines) and (not lines[index].strip() or lines[index].startswith(" ")):
                block.append(lines[index])
                index += 1
            out += ["", "```python", textwrap.dedent("\n".join(block)).strip("\n"), "```", ""]
            continue
        out.append(_inline(line))
        index += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n")


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _annotation(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return ""
    return value if isinstance(value, str) else inspect.formatannotation(value)


def _repr(value: Any) -> str:
    """A stable repr: sets sorted (their order changes between runs), no memory addresses."""
    if isinstance(value, (set, frozenset)):
        items = ", ".join(sorted(_repr(item) for item in value))
        return f"{type(value).__name__}({{{items}}})" if items else f"{type(value).__name__}()"
    shown = repr(value)
    return type(value).__name__ if re.search(r" at 0x[0-9a-f]+", shown) else shown


def _default(value: Any) -> str:
    if value is inspect.Parameter.empty:
        return "required"
    return f"`{_repr(value)}`"


def _signature(name: str, obj: Any) -> str:
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    parts = []
    star_done = False
    for param in sig.parameters.values():
        if param.name in ("self", "cls"):
            continue
        if param.kind is param.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if param.kind is param.VAR_POSITIONAL:
            star_done = True
        prefix = {param.VAR_POSITIONAL: "*", param.VAR_KEYWORD: "**"}.get(param.kind, "")
        text = prefix + param.name
        if param.annotation is not param.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is not param.empty:
            text += f" = {_repr(param.default)}"
        parts.append(text)
    result = f"{name}({', '.join(parts)})"
    if sig.return_annotation is not sig.empty and not inspect.isclass(obj):
        result += f" -> {_annotation(sig.return_annotation)}"
    return result


def _fields_markdown(fields: list[tuple[str, str, str]], defaults: dict[str, Any]) -> str:
    out = []
    params = [(name, text) for kind, name, text in fields if kind == "param"]
    if params:
        out += ["| Parameter | Default | Description |", "| --- | --- | --- |"]
        out += [
            f"| `{name}` | {_default(defaults.get(name, inspect.Parameter.empty))} | {_cell(text)} |"
            for name, text in params
        ]
    raises = [(name, text) for kind, name, text in fields if kind == "raises"]
    if raises:
        out += ["", "Raises:", ""] + [f"- `{name}`: {_inline(text)}" for name, text in raises]
    returns = [text for kind, _, text in fields if kind in ("returns", "return")]
    if returns:
        out += ["", f"Returns: {_inline(returns[0])}"]
    return "\n".join(out).strip("\n")


def _defaults(obj: Any) -> dict[str, Any]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return {name: param.default for name, param in inspect.signature(target).parameters.items()}
    except (TypeError, ValueError):
        return {}


def _import(dotted: str) -> Any:
    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError):
        return importlib.import_module(dotted)


def parameters_table(dotted: str) -> str:
    """The ``:param:`` table of a class (or function), with its signature's defaults."""
    obj = _import(dotted)
    _, fields = _split(obj.__doc__ or "")
    table = _fields_markdown([field for field in fields if field[0] == "param"], _defaults(obj))
    if not table:
        raise DocsError(f"docs: {dotted} documents no :param: fields")
    return table


def _constant_comment(module: Any, name: str) -> str:
    source = inspect.getsource(module)
    match = re.search(rf"((?:^#:.*\n)+)^{re.escape(name)}\b", source, re.M)
    if not match:
        return ""
    return " ".join(line.removeprefix("#:").strip() for line in match.group(1).splitlines())


def _member_markdown(module: Any, name: str) -> str:
    obj = getattr(module, name)
    if not (inspect.isclass(obj) or inspect.isfunction(obj)):
        comment = _inline(_constant_comment(module, name))
        return f"### `{name}`\n\n```python\n{name} = {_repr(obj)}\n```\n\n{comment}".strip()
    body, fields = _split(obj.__doc__ or "")
    if inspect.isclass(obj):
        bases = [base.__name__ for base in obj.__bases__ if base is not object]
        head = "class " + (_signature(name, obj.__init__) if "__init__" in vars(obj) else name).removesuffix(" -> None")
        head += f"  # bases: {', '.join(bases)}" if bases else ""
    else:
        head = _signature(name, obj)
    parts = [f"### `{name}`", f"```python\n{head}\n```", _body_markdown(body), _fields_markdown(fields, _defaults(obj))]
    if inspect.isclass(obj):
        model_fields = getattr(obj, "model_fields", None)
        if isinstance(model_fields, dict) and "model_fields" not in vars(obj):
            rows = ["| Field | Type |", "| --- | --- |"]
            rows += [f"| `{field}` | `{_cell(_annotation(info.annotation))}` |" for field, info in model_fields.items()]
            if len(rows) > 2:
                parts.append("\n".join(rows))
        for attr, value in vars(obj).items():
            if attr.startswith("_"):
                continue
            function = value.fget if isinstance(value, property) else value
            function = getattr(function, "__func__", function)
            if not inspect.isfunction(function) or not function.__doc__:
                continue
            m_body, m_fields = _split(function.__doc__)
            title = f"{name}.{attr}" + ("" if isinstance(value, property) else "()")
            sig = f"{name}.{attr}" if isinstance(value, property) else _signature(f"{name}.{attr}", function)
            prefix = "async def " if inspect.iscoroutinefunction(function) else ""
            section = [f"#### `{title}`", f"```python\n{prefix}{sig}\n```", _body_markdown(m_body)]
            section.append(_fields_markdown(m_fields, _defaults(function)))
            parts.append("\n\n".join(part for part in section if part))
    return "\n\n".join(part for part in parts if part)


def api_reference(module_name: str, members: list[str]) -> str:
    """A module's reference: its docstring, then each member (default: the module's ``__all__``)."""
    module = importlib.import_module(module_name)
    names = members or list(getattr(module, "__all__", []))
    missing = [name for name in names if not hasattr(module, name)]
    if missing:
        raise DocsError(f"docs: {module_name} has no {missing}")
    body, _ = _split(module.__doc__ or "")
    parts = [f"## `{module_name}`", _body_markdown(body)]
    parts += [_member_markdown(module, name) for name in names]
    return "\n\n".join(part for part in parts if part)


# ------------------------------------------------------------------------------------------------
# The other kinds
# ------------------------------------------------------------------------------------------------


def example_snippet(relative_path: str, name: str) -> str:
    """The dedented code between ``# [START name]`` and ``# [END name]`` of a repository file."""
    path = ROOT / relative_path
    if not path.is_file():
        raise DocsError(f"docs: example file {relative_path} does not exist")
    lines = path.read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == f"# [START {name}]"]
    ends = [i for i, line in enumerate(lines) if line.strip() == f"# [END {name}]"]
    if len(starts) != 1 or len(ends) != 1 or ends[0] <= starts[0]:
        raise DocsError(f"docs: {relative_path} needs exactly one '# [START {name}]' ... '# [END {name}]' pair")
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


def _included(relative_path: str) -> str:
    path = ROOT / relative_path
    if not path.is_file():
        raise DocsError(f"docs: included file {relative_path} does not exist")
    text = path.read_text()
    # Its relative links were written for its own folder: from docs/ they start one level up.
    return re.sub(r"\]\((?![a-z]+:|#|/)([^)]+)\)", lambda m: f"](../{m.group(1)})", text).strip("\n")


def generate(spec: str) -> str:
    """The Markdown of one ``<!-- generated: SPEC -->`` block."""
    kind, *args = spec.split()
    if kind == "example" and len(args) == 2:
        return f'```python title="{args[0]}"\n{example_snippet(args[0], args[1])}\n```'
    if kind == "include" and len(args) == 1:
        return _included(args[0])
    if kind == "connection-extras" and not args:
        return connection_extras_table()
    if kind == "parameters" and len(args) == 1:
        return parameters_table(args[0])
    if kind == "api" and args:
        return api_reference(args[0], args[1:])
    raise DocsError(f"docs: unknown directive <!-- generated: {spec} -->")


def render(markdown: str) -> str:
    """The page with every generated block rewritten from the code."""
    return _BLOCK.sub(lambda m: f"{m.group(1)}{generate(m.group('spec'))}\n{END}", markdown)


def pages() -> list[Path]:
    """Every Markdown page of the docs."""
    return sorted(path for path in DOCS.rglob("*.md") if "hooks" not in path.parts)


# ------------------------------------------------------------------------------------------------
# MkDocs hook
# ------------------------------------------------------------------------------------------------


def _link(page_path: Path, repo_url: str) -> Any:
    def replace(match: re.Match[str]) -> str:
        target = (page_path.parent / match.group(1)).resolve()
        if DOCS in target.parents or not target.exists() or ROOT not in target.parents:
            return match.group(0)
        relative = target.relative_to(ROOT).as_posix()
        kind = "tree" if target.is_dir() else "blob"
        return f"]({repo_url}/{kind}/main/{relative}{match.group(2) or ''})"

    return replace


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Fail on a stale page; point links to repository files at GitHub."""
    from mkdocs.exceptions import PluginError

    try:
        fresh = render(markdown)
    except DocsError as err:
        raise PluginError(str(err)) from err
    if fresh != markdown:
        raise PluginError(f"docs/{page.file.src_path} is stale: run make docs-render")
    page_path = DOCS / page.file.src_path
    repo_url = str(config.get("repo_url") or "").rstrip("/")
    return _LINK.sub(_link(page_path, repo_url), markdown)


def main(argv: list[str]) -> int:
    """Rewrite the stale pages (``--check``: only list them); exit 1 if any was stale."""
    sys.path.insert(0, str(ROOT))
    stale = []
    for path in pages():
        text = path.read_text()
        fresh = render(text)
        if fresh != text:
            stale.append(path.relative_to(ROOT).as_posix())
            if "--check" not in argv:
                path.write_text(fresh)
    for name in stale:
        print(f"{'stale' if '--check' in argv else 'rendered'}: {name}")
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
