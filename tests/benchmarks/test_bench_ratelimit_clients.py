"""The rate-limit benchmark runs its client processes side by side: none stalls on its own output."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import bench_ratelimit

#: More than an OS pipe buffer holds (64 KiB on Linux).
LOUD = 1 << 20


def test_a_loud_client_runs_on_while_the_first_client_is_waited_for(tmp_path: Path) -> None:
    done = tmp_path / "loud-done"
    # The first client ends only once the second has written all its output and ended: with the
    # second's output in a pipe that nobody reads until the first ends, it would wait in vain.
    waiting = (
        "import pathlib, sys, time\n"
        f"done = pathlib.Path({str(done)!r})\n"
        "deadline = time.monotonic() + 60\n"
        "while not done.exists():\n"
        "    if time.monotonic() > deadline:\n"
        "        sys.exit('the loud client never finished')\n"
        "    time.sleep(0.05)\n"
        "print('saw the loud client finish')\n"
    )
    loud = (
        "import pathlib, sys\n"
        f"sys.stdout.write('x' * {LOUD})\n"
        "sys.stdout.flush()\n"
        f"pathlib.Path({str(done)!r}).touch()\n"
    )
    outputs = [tmp_path / "waiting.out", tmp_path / "loud.out"]

    codes = bench_ratelimit.run_clients(
        [[sys.executable, "-c", waiting], [sys.executable, "-c", loud]], outputs, dict(os.environ), timeout=120
    )

    assert codes == [0, 0], outputs[0].read_text()
    assert outputs[0].read_text() == "saw the loud client finish\n"
    assert outputs[1].stat().st_size == LOUD
