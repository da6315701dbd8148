"""A year of history, seeded: the table time-dependent tests backfill month by month.

`hist.events`, one row per event in 2015, about ROWS_PER_MONTH a month:
- `updated_at` (the job's timestamp) is when the event happened;
- `labelled_at` is when its outcome `converted` became known: 2 to 6 days later (the job's
  `source.label_timestamp`), so a cut-off sees the rows of its last days unlabelled;
- `amount` shifts up in June, July and August (SHIFTS), `visits` (a count with few values)
  from October on; `channel` gains a value never seen before, `app`, from April on;
- `region`, `tenure` and `is_member` never move.
`converted` follows a logistic of the features, so a model learns something real.
"""

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from psycopg2 import sql

from helpers import query
from pipeline.warehouse import db

TABLE = "hist.events"
YEAR = 2015
ROWS_PER_MONTH = 2_000
STABLE = ("region", "tenure", "is_member")
SHIFTS = {"amount": (6, 7, 8), "visits": (10, 11, 12)}  # feature -> months it moves in
UNSEEN = ("channel", "app", 4)  # feature, new value, first month
DDL = """
DROP SCHEMA IF EXISTS hist CASCADE;
CREATE SCHEMA hist;
CREATE TABLE {table} (
    event_id    bigint PRIMARY KEY,
    updated_at  timestamptz NOT NULL,
    labelled_at timestamptz,
    amount      double precision,
    visits      integer,
    channel     text,
    region      text,
    tenure      integer,
    is_member   boolean,
    converted   boolean
)"""

SPEC = {
    "name": "history",
    "description": "A year of events, backfilled month by month.",
    "source": {
        "table": TABLE,
        "key": "event_id",
        "timestamp": "updated_at",
        "label_timestamp": "labelled_at",
    },
    "features": {
        "numeric": ["amount", "visits", "tenure"],
        "categorical": ["channel", "region"],
        "boolean": ["is_member"],
    },
    "target": "converted",
    "task": "classification",
    "model": {"estimator": "logistic_regression"},
    "retrain": {"policy": "on_drift"},
    "schedule": {"cron": "0 0 1 * *"},
    "monitoring": {"min_new_rows": 1_000},
}


def month_start(month: int) -> datetime:
    """Midnight UTC of the first day of `month` of YEAR (13: the next January)."""
    return datetime(YEAR + (month - 1) // 12, (month - 1) % 12 + 1, 1, tzinfo=UTC)


def events(seed: int = 11) -> pd.DataFrame:
    """Every event of the year, seeded: the same seed gives the same rows."""
    rng = np.random.default_rng(seed)
    frames = []
    for month in range(1, 13):
        n = ROWS_PER_MONTH
        start, end = month_start(month), month_start(month + 1)
        seconds = rng.uniform(0, (end - start).total_seconds(), n)
        happened = pd.to_datetime(start) + pd.to_timedelta(np.sort(seconds), unit="s")
        amount = rng.normal(160 if month in SHIFTS["amount"] else 100, 20, n)
        visits = rng.poisson(7 if month in SHIFTS["visits"] else 3, n)
        channels = ["web", "store", "phone"]
        weights = [0.5, 0.3, 0.2]
        if month >= UNSEEN[2]:
            channels, weights = [*channels, UNSEEN[1]], [0.4, 0.2, 0.15, 0.25]
        channel = rng.choice(channels, n, p=weights)
        region = rng.choice(["north", "south", "east", "west"], n)
        tenure = rng.integers(0, 120, n)
        member = rng.random(n) < 0.4
        logit = -1.0 + 0.02 * (amount - 100) + 0.25 * (visits - 3) + 0.6 * member
        logit += np.where(channel == "phone", 0.5, 0.0) - 0.005 * tenure
        converted = rng.random(n) < 1 / (1 + np.exp(-logit))
        lag = pd.to_timedelta(rng.uniform(2, 6, n), unit="D")
        frames.append(
            pd.DataFrame(
                {
                    "updated_at": happened,
                    "labelled_at": happened + lag,
                    "amount": amount.round(2),
                    "visits": visits,
                    "channel": channel,
                    "region": region,
                    "tenure": tenure,
                    "is_member": member,
                    "converted": converted,
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    frame.insert(0, "event_id", np.arange(1, len(frame) + 1))
    return frame


def seed_history(url: str, seed: int = 11) -> pd.DataFrame:
    """(Re)create hist.events with `events(seed)`; returns the rows."""
    frame = events(seed)
    with db.transaction(url) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL(DDL).format(table=db.table_ident(TABLE)))
        csv = frame.to_csv(index=False, header=False, date_format="%Y-%m-%d %H:%M:%S.%f+00")
        cur.copy_expert(
            sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv)").format(db.table_ident(TABLE)),
            db.ChunkReader(iter([csv.encode()])),
        )
        cur.execute(sql.SQL("ANALYZE {}").format(db.table_ident(TABLE)))
    return frame


def rows_before(url: str, as_of: datetime) -> int:
    return query(url, f"SELECT count(*) FROM {TABLE} WHERE updated_at < %s", (as_of,))[0][0]


def cutoffs() -> list[datetime]:
    """The monthly backfill: the first of February to the first of the next January."""
    return [month_start(m) for m in range(2, 14)]
