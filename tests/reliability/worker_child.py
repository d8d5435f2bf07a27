"""
A worker process for ``test_no_duplicate_jobs.py``: run the start operator's sync path with a
file-backed task state store, until killed.

Usage: ``python worker_child.py KB_UUID STORE_FILE`` (the connection comes from the environment).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reliability_support import FileStore, context

from airflow_provider_gradient.operators.indexing_job import GradientStartIndexingJobOperator


def main(kb: str, store_file: str) -> None:
    op = GradientStartIndexingJobOperator(
        task_id="reindex", knowledge_base_uuid=kb, deferrable=False, poll_interval=0.2
    )
    op.execute(context(store=FileStore(store_file)))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
