"""Fixtures the integration modules share."""

import pytest

from helpers import run_stages
from pipeline.local.demo_data import demo_as_of, seed_table
from pipeline.spec import load_spec


@pytest.fixture
def published(warehouse, jobs):
    seed_table(warehouse, "demo.deliveries", 2_000)
    run_stages(warehouse, load_spec(jobs / "delivery_delay.yaml"), demo_as_of(), "run-1")
    return warehouse
