"""``python -m cli``: the ``bss`` command without installing it."""

from cli.main import main

raise SystemExit(main())
