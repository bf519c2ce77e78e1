"""Storage: the engine, units of work, portable column types and the Alembic migrations."""

from creditgate.db.engine import Database
from creditgate.db.metadata import metadata

__all__ = ["Database", "metadata"]
