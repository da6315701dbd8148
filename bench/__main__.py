"""`python -m bench`: scoring against the floors of Postgres and the model, and the naive peer."""

import argparse
import logging
import sys

from bench.harness import configure_logging, run_bench
from pipeline.config import warehouse_url
from pipeline.errors import PipelineError
from pipeline.local.embedded import start_for_cli

log = logging.getLogger("bench")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--rows", default="1000000", help="comma-separated table sizes (default 1000000)"
    )
    p.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    p.add_argument(
        "--naive-max-rows",
        type=int,
        default=1_000_000,
        help="largest size for the naive peer (default 1M)",
    )
    p.add_argument(
        "--train-rows",
        type=int,
        default=200_000,
        help="rows the model learns from (default 200000)",
    )
    p.add_argument("--repeat", type=int, default=1, help="runs per arm; the fastest counts")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument(
        "--incremental",
        type=float,
        help="also run the incremental arm: this fraction of rows updated (a tenth of it "
        "deleted, as many inserted), e.g. 0.01",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    try:
        run_bench(
            warehouse_url(fallback=start_for_cli),
            [int(n) for n in args.rows.split(",")],
            [int(n) for n in args.workers.split(",")],
            args.naive_max_rows,
            args.train_rows,
            args.repeat,
            args.json,
            args.incremental,
        )
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
