"""The warehouse the commands use: `DATABASE_URL` (or the Airflow connection `warehouse`),
else the embedded Postgres, started if needed."""

from pipeline import config
from pipeline.local import embedded
from pipeline.warehouse.migrate import migrate


def warehouse() -> str:
    """The configured warehouse, else the embedded Postgres (started if needed)."""
    return config.warehouse_url(fallback=embedded.start_for_cli)


def migrated_warehouse() -> str:
    """The warehouse with the scoring schema up to date: pending migrations are applied first
    (or, for a login that may not, a one-line error says to run `migrate`)."""
    url = warehouse()
    migrate(url)
    return url
