"""`prunebench worker` whose every job hangs, as a worker stuck inside OpenVINO (a wedged NCS2 driver) does: its
device thread never returns while its heartbeat (the main thread) and its claim renewals go on.

Run as a script (`python tests/hanging_worker.py --broker URL --device CPU`); the hang is patched in here, so the
package has no test hook. It hangs before the device lock: a test must not hold this host's lock for other runs.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from pytest_prunebench import worker


def _hang(self: worker.JobMeasurer, job: Any, fields: Any) -> Any:
    threading.Event().wait()  # forever: only SIGKILL ends it


if __name__ == "__main__":
    worker.JobMeasurer.measure = _hang  # type: ignore[method-assign]
    sys.exit(worker.main())
