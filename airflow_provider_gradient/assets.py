"""
The Asset of a knowledge base: one URI, built in one place.

Every example, page and event watcher names a knowledge base's Asset through
:func:`knowledge_base_asset`, so the task that reindexes it (``outlets``), the DAGs scheduled on it
and an ``AssetWatcher`` watching it all refer to the same Asset. The URI is
``gradient://knowledge-bases/<knowledge base uuid>``; the uuid (not the name) keeps it stable
across renames, and is known when the DAG file is parsed without calling the API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow_provider_gradient._uuids import validate_uuid

if TYPE_CHECKING:
    from airflow.sdk import Asset, AssetWatcher

__all__ = ["KNOWLEDGE_BASE_URI_PREFIX", "knowledge_base_asset", "knowledge_base_uri"]

#: Everything before the knowledge base's uuid in its Asset URI.
KNOWLEDGE_BASE_URI_PREFIX = "gradient://knowledge-bases/"


def knowledge_base_uri(knowledge_base_uuid: str) -> str:
    """
    The Asset URI of a knowledge base: ``gradient://knowledge-bases/<uuid>``.

    :param knowledge_base_uuid: The knowledge base's uuid.
    :raises GradientConfigError: It is not a uuid.
    """
    return KNOWLEDGE_BASE_URI_PREFIX + validate_uuid(knowledge_base_uuid, "knowledge_base_uuid")


def knowledge_base_asset(knowledge_base_uuid: str, *, watchers: list[AssetWatcher] | None = None) -> Asset:
    """
    The Asset of a knowledge base: put it in the start operator's ``outlets``, schedule consumer
    DAGs on it, or give it a watcher (``GradientKnowledgeBaseEventTrigger``).

    Its name is its URI, so two calls for one knowledge base give the same Asset.

    :param knowledge_base_uuid: The knowledge base's uuid.
    :param watchers: ``AssetWatcher`` objects recording an asset event per reindex.
    :raises GradientConfigError: ``knowledge_base_uuid`` is not a uuid.
    """
    from airflow.sdk import Asset

    uri = knowledge_base_uri(knowledge_base_uuid)
    return Asset(name=uri, uri=uri, watchers=list(watchers or []))
