"""A knowledge base named instead of given by uuid: the pick (no transport) and the hook's lookups."""

from __future__ import annotations

import pytest

from airflow_provider_gradient import _api
from airflow_provider_gradient.exceptions import GradientConfigError
from airflow_provider_gradient.hooks.gradient import GradientHook
from airflow_provider_gradient.models import KnowledgeBase
from airflow_provider_gradient.testing.emulator import GradientEmulator

LIST = ("GET", "genai_list_knowledge_bases")
A = "123e4567-e89b-12d3-a456-426614174000"
B = "223e4567-e89b-12d3-a456-426614174000"


def kbs(*pairs: tuple[str, str]) -> list[KnowledgeBase]:
    return [KnowledgeBase(uuid=uuid, name=name) for uuid, name in pairs]


def test_pick_returns_the_one_exact_match() -> None:
    assert _api.pick_knowledge_base("docs", kbs((A, "docs"), (B, "docs-staging"))) == A
    assert _api.pick_knowledge_base("docs-staging", kbs((A, "docs"), (B, "docs-staging"))) == B


def test_pick_no_match_names_the_parameter_and_the_fix() -> None:
    with pytest.raises(GradientConfigError) as caught:
        _api.pick_knowledge_base("Docs ", kbs((A, "docs"), (B, "faq")))
    message = str(caught.value)
    assert "knowledge_base_name='Docs '" in message
    assert "none of the 2 knowledge base(s)" in message
    assert "Did you mean 'docs'?" in message
    assert "knowledge_base_uuid" in message


def test_pick_several_matches_lists_them() -> None:
    with pytest.raises(GradientConfigError, match=rf"matches 2 knowledge bases \({A}, {B}\)"):
        _api.pick_knowledge_base("docs", kbs((B, "docs"), (A, "docs")))


def test_sync_lookup_reads_every_page(gradient_emulator: GradientEmulator, gradient_conn: str) -> None:
    gradient_emulator.set_rate_limits(None, None)
    made = [gradient_emulator.create_knowledge_base(name=f"kb-{index}") for index in range(5)]
    hook = GradientHook()
    # The last knowledge base only shows on a later page when pages are small.
    kbs_read = list(hook._pages(_api.list_knowledge_bases(None, 2), lambda page: page.knowledge_bases))
    assert [kb.name for kb in kbs_read] == [f"kb-{index}" for index in range(5)]
    before = gradient_emulator.count(*LIST)
    assert hook.knowledge_base_uuid_for("kb-4") == made[4].uuid
    assert gradient_emulator.count(*LIST) - before == 1  # 200 a page: one request here


def test_sync_lookup_errors(gradient_emulator: GradientEmulator, gradient_conn: str) -> None:
    gradient_emulator.set_rate_limits(None, None)
    gradient_emulator.create_knowledge_base(name="docs")
    gradient_emulator.create_knowledge_base(name="docs")
    with pytest.raises(GradientConfigError, match="matches 2 knowledge bases"):
        GradientHook().knowledge_base_uuid_for("docs")
    with pytest.raises(GradientConfigError, match="matches none of the 2"):
        GradientHook().knowledge_base_uuid_for("faq")


async def test_async_lookup(gradient_emulator: GradientEmulator, gradient_conn: str) -> None:
    gradient_emulator.set_rate_limits(None, None)
    gradient_emulator.create_knowledge_base(name="docs")
    faq = gradient_emulator.create_knowledge_base(name="faq")
    hook = GradientHook()
    try:
        assert await hook.aknowledge_base_uuid_for("faq") == faq.uuid
        with pytest.raises(GradientConfigError, match="matches none"):
            await hook.aknowledge_base_uuid_for("nope")
    finally:
        await hook.aclose()
