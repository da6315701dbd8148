"""Commands for the laptop stack: Airflow's services here, psql, the embedded Postgres."""

import os
import shutil

from psycopg2.extensions import make_dsn, parse_dsn

from pipeline.cli.connect import warehouse
from pipeline.cli.demo import prepare_demo
from pipeline.local import airflow_stack, embedded


def cmd_airflow(args) -> int:
    """Start Airflow's services on this machine (and Celery workers) and print the login."""
    url = warehouse()
    prepare_demo(url)
    login = airflow_stack.start(url, workers=args.workers, port=args.port)
    executor = f"CeleryExecutor, {args.workers} worker(s)" if args.workers else "LocalExecutor"
    print(f"Airflow is up ({executor}); logs in {airflow_stack.home() / 'logs'}")
    print(f"  open  {login.url}")
    print(f"  user  {login.user}")
    print(f"  password  {login.password}")
    print("Stop it with `make stop-airflow`.")
    return 0


def cmd_stop_airflow(args) -> int:
    """Stop what `airflow` started."""
    print("Airflow stopped" if airflow_stack.stop() else "Airflow was not running")
    return 0


def cmd_psql(args) -> int:
    """Replace this process with psql on the warehouse (the embedded server's psql if needed)."""
    params = parse_dsn(warehouse())
    password = params.pop("password", None)  # in the environment, not on a command line
    env = {**os.environ, **({"PGPASSWORD": password} if password else {})}
    psql = shutil.which("psql") or str(embedded.bin_dir() / "psql")
    os.execve(psql, [psql, make_dsn(**params)], env)


def cmd_stop_db(args) -> int:
    """Stop the embedded Postgres."""
    print("embedded Postgres stopped" if embedded.stop() else "embedded Postgres was not running")
    return 0
