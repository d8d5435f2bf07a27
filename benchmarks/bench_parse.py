"""Parse cost: what importing our operators and sensor adds to a DAG file, in a fresh interpreter.

Each sample is a new ``python -c`` process that times (``time.perf_counter`` around the imports,
interpreter start-up excluded):

* ``sdk``: ``import airflow.sdk`` plus the base classes any operator module needs (the baseline);
* ``gradient``: the same, then our operators and sensor modules;
* ``http``: the same, then ``apache-airflow-providers-http``'s ``HttpOperator`` and ``HttpSensor``
  (an established provider, measured in the same run).

The three kinds are interleaved (sdk, gradient, http, sdk, ...) so load from other processes hits
them alike; the median of ``--repeat`` samples is reported. The ratio to ``sdk`` is taken within
each sample ((sdk + import) / sdk, same process), then the median; target for ours <= 1.10.
Also listed: which heavy modules each import pulls in. Writes
``results/parse.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import table, write_result

BASE = (
    "import airflow.sdk\n"
    "from airflow.providers.common.compat.sdk import BaseOperator, BaseSensorOperator, BaseOperatorLink, conf\n"
)
KINDS = {
    "sdk": "",
    "gradient": "import airflow_provider_gradient.operators.indexing_job\n"
    "import airflow_provider_gradient.sensors.indexing_job\n",
    "http": "from airflow.providers.http.operators.http import HttpOperator\n"
    "from airflow.providers.http.sensors.http import HttpSensor\n",
}
HEAVY = ("aiohttp", "tenacity", "requests", "httpx", "starlette", "uvicorn", "airflow.triggers.base", "pydantic")

PROBE = """
import sys, time, json
t0 = time.perf_counter()
{base}
t1 = time.perf_counter()
before = set(sys.modules)
{extra}
t2 = time.perf_counter()
added = set(sys.modules) - before
heavy = sorted(h for h in {heavy!r} if any(m == h or m.startswith(h + ".") for m in added))
print(json.dumps({{"base": t1 - t0, "extra": t2 - t1, "total": t2 - t0, "modules": len(added), "heavy": heavy}}))
"""


def sample(kind: str) -> dict[str, object]:
    code = PROBE.format(base=BASE, extra=KINDS[kind], heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for kind in KINDS:  # warm the bytecode caches once
        sample(kind)
    samples: dict[str, list[dict[str, object]]] = {kind: [] for kind in KINDS}
    for _ in range(args.repeat):
        for kind in KINDS:
            samples[kind].append(sample(kind))

    def med(kind: str, key: str) -> float:
        return statistics.median(float(s[key]) for s in samples[kind])  # type: ignore[arg-type]

    sdk_total = med("sdk", "total")
    rows = []
    for kind in KINDS:
        rows.append(
            {
                "kind": kind,
                "total_ms": med(kind, "total") * 1000,
                "added_ms": med(kind, "extra") * 1000,
                # Per sample: (sdk + this import) / sdk, both timed in the same process, so load from
                # other processes (which makes a whole sample slower or faster) cancels out.
                "ratio_to_sdk": statistics.median(
                    float(s["total"]) / float(s["base"])  # type: ignore[arg-type]
                    for s in samples[kind]
                ),
                "ratio_of_medians": med(kind, "total") / sdk_total,
                "modules_added": int(med(kind, "modules")),
                "heavy_modules_added": samples[kind][-1]["heavy"],
                "samples_total_ms": [round(float(s["total"]) * 1000, 1) for s in samples[kind]],  # type: ignore[arg-type]
            }
        )
    print(f"Parse cost: median of {args.repeat} fresh interpreters each (interleaved)")
    print(
        table(
            ["import", "total ms", "added ms", "x sdk", "modules added", "heavy modules added"],
            [
                [
                    r["kind"],
                    r["total_ms"],
                    r["added_ms"],
                    r["ratio_to_sdk"],
                    r["modules_added"],
                    ", ".join(r["heavy_modules_added"]) or "-",  # type: ignore[arg-type]
                ]
                for r in rows
            ],
        )
    )
    ours = next(r for r in rows if r["kind"] == "gradient")
    met = float(ours["ratio_to_sdk"]) <= 1.10  # type: ignore[arg-type]
    print(f"{'MET ' if met else 'MISSED'} gradient / sdk = {ours['ratio_to_sdk']:.3f} (target <= 1.10)")
    path = write_result(
        "parse",
        {
            "benchmark": "parse_cost",
            "repeat": args.repeat,
            "baseline_imports": BASE,
            "rows": rows,
            "targets": {"import_ratio<=1.10": {"met": met, "detail": f"{ours['ratio_to_sdk']:.3f}"}},
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
