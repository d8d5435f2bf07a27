"""``[core] hostname_callable`` of the system-test triggerers: each one reports its own hostname.

Both triggerers run on this machine, so Airflow would record the same hostname for both. Giving
them distinct loopback names (``127.0.0.1`` and ``localhost``) lets a test map a task instance's
``triggerer_job.hostname`` (public REST API) to the process to kill, and log links keep working.
"""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    """The name in ``GRADIENT_SYSTEM_HOSTNAME``, else the machine's FQDN."""
    return os.environ.get("GRADIENT_SYSTEM_HOSTNAME") or socket.getfqdn()
