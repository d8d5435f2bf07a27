"""The Asset of a knowledge base: one helper, and no other spelling of its URI anywhere users read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from airflow.sdk import Asset, AssetWatcher

from airflow_provider_gradient.assets import KNOWLEDGE_BASE_URI_PREFIX, knowledge_base_asset, knowledge_base_uri
from airflow_provider_gradient.exceptions import GradientConfigError
from airflow_provider_gradient.triggers.knowledge_base_event import GradientKnowledgeBaseEventTrigger

ROOT = Path(__file__).resolve().parents[1]
KB = "123e4567-e89b-12d3-a456-426614174000"
#: What users read: the README and the docs.
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PACKAGE = sorted((ROOT / "airflow_provider_gradient").rglob("*.py"))
#: Any URI-like text naming knowledge bases under the gradient scheme.
KB_URI = re.compile(r"gradient://[^\s`'\")\]]*knowledge-bases")
#: An Asset written with a literal gradient URI.
LITERAL_ASSET = re.compile(r"""Asset\((?:[^()]*?uri=)?\s*f?["']gradient://""")


def test_uri_and_asset() -> None:
    assert knowledge_base_uri(KB.upper()) == f"gradient://knowledge-bases/{KB}"
    asset = knowledge_base_asset(KB)
    assert isinstance(asset, Asset)
    assert asset.uri == asset.name == knowledge_base_uri(KB)
    assert asset == knowledge_base_asset(KB.upper()), "one knowledge base, one Asset"
    assert asset != knowledge_base_asset("223e4567-e89b-12d3-a456-426614174000")


def test_asset_with_a_watcher() -> None:
    watcher = AssetWatcher(name="w", trigger=GradientKnowledgeBaseEventTrigger(knowledge_base_uuid=KB))
    asset = knowledge_base_asset(KB, watchers=[watcher])
    assert asset.watchers == [watcher]
    assert asset.uri == knowledge_base_uri(KB)


@pytest.mark.parametrize("bad", ["docs", "", None])
def test_a_knowledge_base_is_named_by_uuid(bad: object) -> None:
    with pytest.raises(GradientConfigError, match="knowledge_base_uuid must be a UUID"):
        knowledge_base_asset(bad)  # type: ignore[arg-type]


def test_no_other_spelling_of_the_uri() -> None:
    """
    Code builds the URI only through the helper; the README and the docs spell it only as the
    helper does, and never write an ``Asset(...)`` of a literal URI for users to copy.
    """
    wrong = []
    for path in [*PACKAGE, *sorted((ROOT / "example_dags").glob("*.py"))]:
        if path.name != "assets.py":
            wrong += [f"{path.relative_to(ROOT)}: {match.group(0)}" for match in KB_URI.finditer(path.read_text())]
    for path in DOCS:
        text = path.read_text()
        wrong += [
            f"{path.relative_to(ROOT)}: {match.group(0)}"
            for match in KB_URI.finditer(text)
            if match.group(0) + "/" != KNOWLEDGE_BASE_URI_PREFIX
        ]
        wrong += [f"{path.relative_to(ROOT)}: {match.group(0)}" for match in LITERAL_ASSET.finditer(text)]
    assert not wrong, "Use knowledge_base_asset(uuid) / knowledge_base_uri(uuid):\n" + "\n".join(wrong)
