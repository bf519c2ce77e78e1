"""`python -m creditgate`: the same as the `creditgate` command."""

from creditgate.cli.main import app

app(prog_name="creditgate")
