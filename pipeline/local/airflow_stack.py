"""Airflow as its users run it, on this machine: `make airflow` / `make stop-airflow`.

The api-server (UI and REST API), scheduler, dag-processor and triggerer run in one process
group with the LocalExecutor; with `workers=N` the CeleryExecutor runs the tasks on N Celery
workers through Redis (`REDIS_URL`). Every process reads `.airflow/airflow.cfg`, which
`airflow_home.configure` writes with the project's settings, so any `airflow` command run with
`AIRFLOW_HOME=.airflow` sees the same DAGs. Logs go to `.airflow/logs/<process>.log`.

Once the api-server answers, every job's DAG (and approval DAG) is unpaused, however it was
made (a CLI run such as `make demo` makes them paused): the scheduler then starts each one's
latest scheduled run at once, before anyone can press Trigger, so a Trigger press is one run of
its own.
"""

import json
import logging
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipeline.config import jobs_dir
from pipeline.errors import ConfigError, PipelineError
from pipeline.local import airflow_home
from pipeline.spec import load_spec, spec_paths

log = logging.getLogger(__name__)

SERVICES = ("api-server", "scheduler", "dag-processor", "triggerer")
USER = "admin"
START_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 90  # above SQLite's lock wait (airflow_home.SQLITE_CONNECT_ARGS)


@dataclass(frozen=True)
class Login:
    url: str
    user: str
    password: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME", airflow_home.DEFAULT_HOME))


def pid_file() -> Path:
    return home() / "stack.pid"


def password(folder: Path, user: str = USER) -> str:
    """A user's password (the admin's is made here, once; the approvers' by Airflow when its
    api-server starts), kept in the simple auth manager's passwords file."""
    path = folder / airflow_home.PASSWORDS_FILE
    if not path.exists():
        path.write_text(json.dumps({USER: secrets.token_urlsafe(12)}))
        path.chmod(0o600)
    return json.loads(path.read_text())[user]


def commands(workers: int, hosts: Path | None = None) -> dict[str, list[str]]:
    """Process name -> command line. Each Celery worker gets a name of its own (`worker-N`),
    which Airflow records as the hostname of the tasks it ran (`hostname_callable`). With
    `hosts`, each worker runs as if on a machine of its own: in `hosts/worker-N` as its working
    and temporary folder, so with the data root on object storage the workers share no disk
    the pipeline writes (Airflow's own logs stay in its home, where the UI reads them)."""
    airflow = str(Path(sys.executable).parent / "airflow")
    out = {name: [airflow, name] for name in SERVICES}
    for n in range(1, workers + 1):
        name = f"worker-{n}"
        env = [f"SCORING_WORKER_NAME={name}"]
        if hosts is not None:
            host = hosts / name
            (host / "tmp").mkdir(parents=True, exist_ok=True)
            env = ["-C", str(host), f"TMPDIR={host / 'tmp'}", *env]
        out[name] = ["env", *env, airflow, "celery", "worker", "--celery-hostname", f"{name}@%h"]
        out[name] += ["--concurrency", "1"]
    return out


def start(warehouse: str, workers: int = 0, port: int = 8080, hosts: Path | None = None) -> Login:
    """Start the stack in the background (once); returns where and how to log in. `hosts`: see
    `commands`."""
    if running():
        raise ConfigError(f"Airflow already runs (pid file {pid_file()}): `make stop-airflow`")
    executor = "CeleryExecutor" if workers else "LocalExecutor"
    log_ports = (free_port(), free_port())
    folder = airflow_home.configure(executor, port, ui=True, log_ports=log_ports)
    sections = airflow_home.settings(folder, executor, port, True, log_ports)
    airflow_home.ensure_metadata_db()
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    env = {
        **os.environ,
        **airflow_home.as_env(sections),  # this stack's settings, whatever the shell exported
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DATABASE_URL": warehouse,
        "AIRFLOW_CONN_WAREHOUSE": warehouse,
    }
    script = " ".join(
        f"{shlex.join(command)} >> {shlex.quote(str(logs / name))}.log 2>&1 &"
        for name, command in commands(workers, hosts).items()
    )
    leader = subprocess.Popen(  # one process group: `stop` ends every process with one signal
        ["bash", "-c", f"{script} wait"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    pid_file().write_text(str(leader.pid))
    login = Login(f"http://127.0.0.1:{port}", USER, password(folder))
    wait_until_up(login.url, logs)
    unpause(Client(login), dag_ids())
    return login


def dag_ids() -> list[str]:
    """The DAGs the stack runs: each job's whose spec loads (a broken one has no DAG), and
    its approval DAG when the spec asks for approval."""
    ids = []
    for path in spec_paths(jobs_dir()):
        try:
            spec = load_spec(path)
        except PipelineError:
            continue
        ids.append(spec.name)
        if spec.governance.approval.when != "never":
            ids.append(f"{spec.name}_approval")
    return ids


def unpause(api: "Client", dag_ids: list[str], timeout_s: float = START_TIMEOUT_S) -> list[str]:
    """Unpause each DAG once the dag-processor has parsed it (PATCH /api/v2/dags/<id>); returns
    those it unpaused. A DAG met paused was made by a CLI run: unpausing it makes the scheduler
    start its latest scheduled run now, at the stack's start, not at someone's first Trigger.
    A DAG still missing at the deadline is a warning (its spec may fail to import)."""
    deadline, waiting, unpaused = time.monotonic() + timeout_s, list(dag_ids), []
    while waiting:
        for dag_id in list(waiting):
            dag = api.try_call("GET", f"/api/v2/dags/{dag_id}")
            if not dag.get("dag_id"):
                continue
            if dag.get("is_paused"):
                api.call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": False})
                unpaused.append(dag_id)
                log.info("unpaused %s: its latest scheduled run starts now", dag_id)
            waiting.remove(dag_id)
        if waiting and time.monotonic() > deadline:
            log.warning("DAGs not parsed within %.0f s, left as they are: %s", timeout_s, waiting)
            break
        if waiting:
            time.sleep(2)
    return unpaused


class Client:
    """Airflow's REST API, as the UI calls it, with the admin's token."""

    def __init__(self, login: Login):
        self.base, self.token = login.url, None
        auth = {"username": login.user, "password": login.password}
        self.token = self.call("POST", "/auth/token", auth)["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        return json.loads(self.text(path, method, body))

    def text(self, path: str, method: str = "GET", body=None, authenticated=True) -> str:
        headers = {"Content-Type": "application/json"}
        if authenticated and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(
            f"{self.base}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers=headers,
        )
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.read().decode()

    def run_to_end(self, dag_id: str, conf: dict, timeout_s: float = 900) -> dict:
        """Trigger a run with `conf` (as the Trigger form does); its record once it ended."""
        deadline = time.monotonic() + timeout_s
        while not self.try_call("GET", f"/api/v2/dags/{dag_id}").get("dag_id"):
            self.check(deadline, f"DAG {dag_id} to be parsed")
        run = self.call(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf}
        )
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run['dag_run_id']}"
        while (run := self.call("GET", path))["state"] not in ("success", "failed"):
            self.check(deadline, f"run {run['dag_run_id']} to end")
        return run

    def try_call(self, method: str, path: str) -> dict:
        try:
            return self.call(method, path)
        except OSError:
            return {}

    @staticmethod
    def check(deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise ConfigError(f"timed out waiting for {what}")
        time.sleep(3)


def wait_until_up(url: str, logs: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/v2/version", timeout=5):
                return
        except OSError:
            time.sleep(2)
    stop()
    raise ConfigError(f"the api-server did not answer within {START_TIMEOUT_S} s; see {logs}")


def running() -> bool:
    try:
        os.killpg(int(pid_file().read_text()), 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return False
    return True


def stop() -> bool:
    """End every process of the stack (SIGTERM, then SIGKILL after 30 s); whether one ran."""
    if not running():
        pid_file().unlink(missing_ok=True)
        return False
    group = int(pid_file().read_text())
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and running():
        reap(group)
        time.sleep(0.5)
    if running():
        os.killpg(group, signal.SIGKILL)
    pid_file().unlink(missing_ok=True)
    return True


def reap(pid: int) -> None:
    """Collect the stack's leader once it exits, when this process started it: until then it
    stays a zombie, which `running` cannot tell from a live process."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # started by another process (`make airflow`): not ours to reap
        pass
