"""
Read a connection and its extras from an event loop without blocking it or deadlocking.

``airflow.providers.common.compat.connection`` does this since common-compat 1.23, which needs
Python 3.11. On Python 3.10 (common-compat 1.20 at most) the same rules apply here: Airflow 3.3.2+
masks the connection's secrets asynchronously (``aget_connection`` + ``aextra_dejson``); on older
Airflow the masking is a synchronous call to the supervisor, so the whole read runs in a worker
thread, where blocking is safe.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import BaseHook, Connection

__all__ = ["read_connection"]


async def read_connection(hook: BaseHook, conn_id: str) -> tuple[Any, dict[str, Any]]:
    """
    Return the connection ``conn_id`` (resolved through ``hook``) and its extra as a dict.

    :param hook: The hook whose ``get_connection``/``aget_connection`` to use.
    :param conn_id: The connection id.
    """
    try:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
    except ImportError:  # common-compat < 1.23 (the last one for Python 3.10 is 1.20)
        pass
    else:
        conn = await get_async_connection(conn_id, hook=hook)
        return conn, await get_async_extra_dejson(conn)

    if hasattr(Connection, "aextra_dejson"):  # Airflow 3.3.2+
        conn = await hook.aget_connection(conn_id)
        return conn, await conn.aextra_dejson()

    from asgiref.sync import sync_to_async

    def read() -> tuple[Any, dict[str, Any]]:
        conn = hook.get_connection(conn_id)
        return conn, conn.extra_dejson

    return await sync_to_async(read)()
