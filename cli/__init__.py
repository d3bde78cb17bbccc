"""``bss``: the operator's command line, speaking the public HTTP API (docs/cli.md)."""
