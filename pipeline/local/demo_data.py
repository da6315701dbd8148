"""Seeded synthetic demo tables: `demo.customers` (churn) and `demo.deliveries` (minutes late).

Realistic on purpose: mixed types, ~5% missing values, timestamps spread over months, a label
with a learnable (but noisy) signal. The same seed always gives the same rows.
"""

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from pipeline.warehouse.sources import load_table

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_DAYS = 300


def with_missing(rng: np.random.Generator, values: pd.Series, fraction: float = 0.05) -> pd.Series:
    """Blank out about `fraction` of the values, as real feeds do."""
    mask = rng.random(len(values)) < fraction
    return values.astype("object").where(~mask, None)


def timestamps(rng: np.random.Generator, n: int) -> pd.Series:
    seconds = rng.integers(0, SPAN_DAYS * 86_400, n)
    return pd.Series(pd.Timestamp(EPOCH) + pd.to_timedelta(seconds, unit="s"))


def customers_chunk(seed: int, start: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, start])
    tenure = rng.integers(0, 72, n)
    charges = np.round(rng.gamma(4.0, 18.0, n) + 10, 2)
    calls = rng.poisson(1.2, n)
    login = rng.exponential(9.0, n).astype(int)
    plan = rng.choice(["basic", "standard", "premium"], n, p=[0.5, 0.35, 0.15])
    region = rng.choice(["north", "south", "east", "west", "central"], n)
    payment = rng.choice(
        ["card", "bank_transfer", "paypal", "invoice"], n, p=[0.45, 0.25, 0.2, 0.1]
    )
    senior = rng.random(n) < 0.16
    partner = rng.random(n) < 0.48
    autopay = rng.random(n) < 0.55
    logit = (
        -1.3
        - 0.045 * tenure
        + 0.012 * (charges - 80)
        + 0.45 * calls
        + 0.05 * login
        + np.where(plan == "basic", 0.5, np.where(plan == "premium", -0.4, 0.0))
        + np.where(payment == "invoice", 0.6, 0.0)
        - 0.5 * autopay
        + 0.3 * senior
        + rng.normal(0, 0.8, n)
    )
    churned = rng.random(n) < 1 / (1 + np.exp(-logit))
    label_known = rng.random(n) < 0.9  # recent customers have no outcome yet
    return pd.DataFrame(
        {
            "customer_id": np.arange(start + 1, start + n + 1),
            "updated_at": timestamps(rng, n),
            "tenure_months": with_missing(rng, pd.Series(tenure)),
            "monthly_charges": with_missing(rng, pd.Series(charges)),
            "support_calls": with_missing(rng, pd.Series(calls)),
            "last_login_days": with_missing(rng, pd.Series(login)),
            "plan": with_missing(rng, pd.Series(plan)),
            "region": with_missing(rng, pd.Series(region)),
            "payment_method": with_missing(rng, pd.Series(payment)),
            "is_senior": with_missing(rng, pd.Series(senior)),
            "has_partner": with_missing(rng, pd.Series(partner)),
            "autopay": with_missing(rng, pd.Series(autopay)),
            "churned": pd.Series(churned).astype("object").where(label_known, None),
        }
    )


def deliveries_chunk(seed: int, start: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng([seed, start])
    distance = np.round(rng.gamma(2.0, 2.5, n), 2)
    items = rng.integers(1, 12, n)
    courier = rng.choice(["bike", "scooter", "car"], n, p=[0.4, 0.35, 0.25])
    weather = rng.choice(["clear", "rain", "snow", "wind"], n, p=[0.6, 0.25, 0.05, 0.1])
    rush = rng.random(n) < 0.3
    speed = np.where(courier == "bike", 1.0, np.where(courier == "scooter", 0.7, 0.6))
    late = (
        2.5 * distance * speed
        + 0.6 * items
        + np.where(weather == "rain", 4, np.where(weather == "snow", 11, 0))
        + 6 * rush
        + rng.normal(0, 3, n)
    )
    return pd.DataFrame(
        {
            "delivery_id": np.arange(start + 1, start + n + 1),
            "updated_at": timestamps(rng, n),
            "distance_km": with_missing(rng, pd.Series(distance)),
            "items": with_missing(rng, pd.Series(items)),
            "courier_type": with_missing(rng, pd.Series(courier)),
            "weather": with_missing(rng, pd.Series(weather)),
            "is_rush_hour": with_missing(rng, pd.Series(rush)),
            "minutes_late": np.round(late, 2),
        }
    )


TABLES = {
    "demo.customers": ("demo/customers.sql", customers_chunk),
    "demo.deliveries": ("demo/deliveries.sql", deliveries_chunk),
}


def seed_table(url: str, table: str, rows: int, seed: int = 7, into: str | None = None) -> float:
    """(Re)create a demo table with `rows` seeded rows, loaded by COPY; returns seconds taken.

    `into` names another `schema.table` to create with the same columns and rows (the benchmark
    keeps one table per size that way).
    """
    ddl_file, make_chunk = TABLES[table]
    target = into or table

    def chunks() -> Iterator[bytes]:
        for start in range(0, rows, CHUNK_ROWS):
            frame = make_chunk(seed, start, min(CHUNK_ROWS, rows - start))
            yield frame.to_csv(
                index=False, header=False, date_format="%Y-%m-%d %H:%M:%S+00"
            ).encode()

    seconds = load_table(url, target, ddl_file, chunks())
    log.info("seeded %s with %d rows in %.1f s", target, rows, seconds)
    return seconds


def demo_as_of() -> datetime:
    """A cut-off after every generated timestamp, for tests that want all rows."""
    return EPOCH + timedelta(days=SPAN_DAYS + 1)
