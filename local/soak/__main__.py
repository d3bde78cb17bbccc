"""``python -m local.soak`` (``make soak``): ``local.soak.run.main``."""

from __future__ import annotations

import sys

from local.soak.run import main

if __name__ == "__main__":
    sys.exit(main())
