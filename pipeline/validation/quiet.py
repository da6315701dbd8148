"""Great Expectations' import-time and context bookkeeping kept out of task logs."""

import logging

# Great Expectations' INFO bookkeeping, by logger and message start: on import, one line per
# public-API function it does not register (about 214 lines per task); while an ephemeral
# context is built, its re-registered metrics, docs folder and (empty) data source list.
# Only these records are dropped; everything else GX logs, and all its warnings, stay.
GX_CHATTER = {
    "great_expectations._docs_decorators": ("Skipping registering function ",),
    "great_expectations.expectations.registry": ("Multiple declarations of ",),
    "great_expectations.data_context.types.base": ("Created temporary directory ",),
    "great_expectations.datasource.fluent.config": ("Loading 'datasources' ->",),
}


def not_gx_chatter(record: logging.LogRecord) -> bool:
    """A logging filter: False for the `GX_CHATTER` records, logged at INFO or below."""
    prefixes = GX_CHATTER.get(record.name, ())
    return record.levelno > logging.INFO or not str(record.msg).startswith(prefixes)


def quiet_gx() -> None:
    """Install `not_gx_chatter` on GX's loggers; before GX is imported, to catch its import."""
    for name in GX_CHATTER:
        logging.getLogger(name).addFilter(not_gx_chatter)  # adding it again is a no-op
