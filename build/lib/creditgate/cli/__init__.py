"""The `creditgate` command line (Typer)."""
