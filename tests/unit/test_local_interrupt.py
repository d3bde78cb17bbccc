"""``make run`` hears Ctrl-C whichever thread the kernel hands the signal to (issue 11's local
platform: it stops on Ctrl-C). Seen under load: the platform's main thread, blocked in an endless
``Event().wait()``, never ran the handler because the signal went to one of its other threads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The main thread blocks SIGINT, so the kernel must deliver it to the other thread (as it may
# when the main thread is asleep in a wait): Python's handler still runs in the main thread, but
# only once that thread runs again.
PROGRAM = """
import signal, threading, time
from local.cli import wait_for_interrupt
signal.signal(signal.SIGINT, signal.default_int_handler)
threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
print("waiting", flush=True)
try:
    wait_for_interrupt()
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


def test_ctrl_c_delivered_to_another_thread_still_stops_the_wait() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", PROGRAM],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "waiting"
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read().strip() == "interrupted"
    finally:
        process.kill()
