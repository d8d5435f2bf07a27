"""
A real Airflow task process for ``test_nothing_left_running.py``: migrate a private sqlite metadata
DB, then ``dag.test()`` a DAG whose start operator waits synchronously in the worker. The parent
SIGTERMs this process mid-wait; Airflow's task runner handler must call the operator's ``on_kill``.

Usage: ``python sigterm_child.py DAG_FILE`` with ``AIRFLOW_HOME``, ``AIRFLOW__CORE__DAGS_FOLDER``,
``AIRFLOW_CONN_GRADIENT_DEFAULT`` and ``GRADIENT_KB_UUID`` set by the parent.
"""

from __future__ import annotations

import importlib.util
import sys


def main(dag_file: str) -> None:
    from airflow.sdk import DAG
    from airflow.utils.db import upgradedb

    upgradedb()
    spec = importlib.util.spec_from_file_location("sigterm_dag", dag_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = next(value for value in vars(module).values() if isinstance(value, DAG))
    print("READY", flush=True)
    run = dag.test()
    print(f"DAG RUN {run.state}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
