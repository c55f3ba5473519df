"""The production topology of docker-compose.yaml, run natively from the project's venv:
PostgreSQL metadata database, Redis broker, CeleryExecutor, and api-server, scheduler,
dag-processor, triggerer and Celery worker(s) as separate processes."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.sandbox_support import REPO_ROOT, Sandbox, airflow_env

AIRFLOW = str(REPO_ROOT / ".venv" / "bin" / "airflow")
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
LOG_TAIL_LINES = 40

# The DAG's default_args fix retry_delay at 5 minutes, and default_args beat
# [core] default_task_retry_delay. A cluster policy (airflow_local_settings.py in
# $AIRFLOW_HOME/config, applied when the dag-processor parses the DAG) shortens it for
# a test deployment only, without touching the DAG.
SHORT_RETRY_POLICY = """\
from datetime import timedelta


def task_policy(task):
    if task.dag_id == "golden_image_bake":
        task.retry_delay = timedelta(seconds=10)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return f"(no {path.name})"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(text)


# --- processes ------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, sid) of a live process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[1]), int(fields[2]), int(fields[3])


def descendants(root: int) -> list[int]:
    """Every live process below `root` (children first seen in /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))):
            children.setdefault(stat[0], []).append(int(entry.name))
    found: list[int] = []
    pending = [root]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _sid(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[2] if stat else None


def alive(pid: int) -> bool:
    return _proc_stat(pid) is not None


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    # Stopped on purpose: check_running no longer counts its exit as a failure.
    retired: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None


# --- the topology -----------------------------------------------------------------------


@dataclass
class ProductionAirflow:
    """One Airflow deployment in the shape of docker-compose.yaml, on this machine."""

    home: Path
    env: dict[str, str]
    api_port: int
    password: str
    components: list[Component] = field(default_factory=list)
    _token: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def logs(self) -> Path:
        return self.home / "component-logs"

    # processes

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [AIRFLOW, *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, *args: str, env: Mapping[str, str] | None = None) -> Component:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("ab") as handle:
            process = subprocess.Popen(
                [AIRFLOW, *args],
                env={**self.env, **(env or {})},
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, signalled as one
            )
        component = Component(name=name, process=process, log=log)
        self.components.append(component)
        return component

    def start_worker(self, name: str) -> Component:
        """A Celery worker with its own node name and log-server port, so a second one can
        start while the first is still shutting down."""
        return self.start(
            name,
            "celery",
            "worker",
            "--celery-hostname",
            f"{name}@%h",
            "--concurrency",
            "8",
            env={"AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())},
        )

    def start_all(self) -> Component:
        """api-server, scheduler, dag-processor, triggerer and one worker; returns the
        worker."""
        self.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.api_port))
        self.start("scheduler", "scheduler")
        self.start("dag-processor", "dag-processor")
        self.start("triggerer", "triggerer")
        return self.start_worker("worker-1")

    def start_ready(self, dag_id: str) -> Component:
        """start_all, then wait until every component is healthy, the worker takes tasks
        and `dag_id` is parsed; unpauses it. Returns the worker."""
        worker = self.start_all()
        self.wait_until_healthy()
        self.wait_for_worker(worker)
        self.wait_for_dag(dag_id)
        self.unpause(dag_id)
        return worker

    def stop(self, component: Component, grace: float = 60.0) -> None:
        """SIGTERM the component's process group and every task process below it (which
        lives in a group of its own, so its on_kill cancels Packer cleanly); SIGKILL what is
        left after `grace` seconds."""
        if not component.running():
            return
        family = descendants(component.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(component.pid, signal.SIGTERM)
        for pid in family:
            stat = _proc_stat(pid)
            # A task process leads its own group inside the worker's session; Packer leads
            # its own session and is cancelled by the task's on_kill (or PDEATHSIG).
            if stat and stat[1] == pid and stat[2] != pid and pid != component.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (
            component.running() or any(alive(pid) for pid in family)
        ):
            time.sleep(0.5)
        for pid in [component.pid, *family]:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            component.process.wait(timeout=10)

    def kill(self, component: Component) -> None:
        """SIGKILL every process of the component's session at once, with no warning: what
        the OOM killer or a lost host does to a worker. Packer runs in a session of its own
        and is left to the kernel's PDEATHSIG, as it would be on a real worker host."""
        session = [pid for pid in descendants(component.pid) if _sid(pid) == component.pid]
        for pid in [component.pid, *session]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        component.process.wait(timeout=30)

    def stop_all(self) -> None:
        # Workers first: their running tasks still need the api-server to report to.
        for component in sorted(self.components, key=lambda c: not c.name.startswith("worker")):
            self.stop(component)

    def check_running(self) -> None:
        for component in self.components:
            if not component.retired and not component.running():
                raise AssertionError(
                    f"{component.name} exited with {component.process.returncode}\n"
                    + self.diagnostics()
                )

    def diagnostics(self) -> str:
        parts = []
        for component in self.components:
            state = "running" if component.running() else f"exit {component.process.returncode}"
            parts.append(
                f"--- {component.name} ({state}), last lines of {component.log}:\n"
                + tail(component.log)
            )
        task_logs = sorted(
            (self.home / "logs").glob("dag_id=*/**/*.log"), key=lambda p: p.stat().st_mtime
        )
        for log in task_logs[-6:]:
            parts.append(f"--- task log {log.relative_to(self.home)}:\n" + tail(log, 25))
        return "\n".join(parts)

    # REST API

    def wait_for(self, what: str, ready: Any, timeout: float, interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.check_running()
            try:
                last = ready()
            except httpx.HTTPError as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(interval)
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})\n"
            + self.diagnostics()
        )

    def health(self) -> dict[str, str]:
        body = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=10).json()
        return {name: part.get("status", "?") for name, part in body.items()}

    def wait_until_healthy(self, timeout: float = 240) -> None:
        wanted = ("metadatabase", "scheduler", "triggerer", "dag_processor")

        def healthy() -> bool:
            status = self.health()
            # The execution API, which workers call, is built on its first request; like
            # docker-compose.yaml's healthcheck, ready means that has happened.
            execution = httpx.get(f"{self.base_url}/execution/health", timeout=60)
            return execution.is_success and all(status.get(n) == "healthy" for n in wanted)

        self.wait_for("every component to report healthy", healthy, timeout)

    def wait_for_worker(self, worker: Component, timeout: float = 120) -> None:
        def ready() -> bool:
            if not worker.running():
                raise AssertionError(f"{worker.name} exited\n{self.diagnostics()}")
            return " ready." in worker.log.read_text(errors="replace")

        self.wait_for(f"Celery {worker.name} to be ready", ready, timeout)

    def token(self) -> str:
        if self._token is None:
            response = httpx.post(
                f"{self.base_url}/auth/token",
                json={"username": "admin", "password": self.password},
                timeout=30,
            )
            assert response.status_code in (200, 201), (response.status_code, response.text)
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base_url}/api/v2/{path.lstrip('/')}",
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=30,
            **kwargs,
        )

    def wait_for_dag(self, dag_id: str, timeout: float = 240) -> None:
        self.wait_for(
            f"the dag-processor to serialize {dag_id}",
            lambda: self.api("GET", f"dags/{dag_id}").status_code == 200,
            timeout,
            interval=2,
        )

    def unpause(self, dag_id: str) -> None:
        response = self.api("PATCH", f"dags/{dag_id}", json={"is_paused": False})
        assert response.status_code == 200, response.text
        assert response.json()["is_paused"] is False

    def trigger(self, dag_id: str, conf: Mapping[str, Any]) -> dict[str, Any]:
        response = self.api(
            "POST", f"dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": dict(conf)}
        )
        assert response.status_code in (200, 201), (response.status_code, response.text)
        return response.json()

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        response = self.api("GET", f"dags/{dag_id}/dagRuns/{run_id}")
        response.raise_for_status()
        return response.json()

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        response = self.api(
            "GET", f"dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100}
        )
        response.raise_for_status()
        return response.json()["task_instances"]

    def describe_tasks(self, dag_id: str, run_id: str) -> str:
        return "\n".join(
            f"  {ti['task_id']}[{ti.get('rendered_map_index') or ti['map_index']}]:"
            f" {ti['state']} (try {ti['try_number']})"
            for ti in self.task_instances(dag_id, run_id)
        )

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> dict[str, Any]:
        def finished() -> dict[str, Any] | None:
            run = self.dag_run(dag_id, run_id)
            return run if run["state"] in ("success", "failed") else None

        try:
            run = self.wait_for(f"DAG run {run_id} to finish", finished, timeout, interval=1)
        except AssertionError as exc:
            tasks = self.describe_tasks(dag_id, run_id)
            raise AssertionError(f"{exc}\ntask instances:\n{tasks}") from None
        if run["state"] != "success":
            raise AssertionError(
                f"DAG run {run_id} ended {run['state']}; task instances:\n"
                f"{self.describe_tasks(dag_id, run_id)}\n{self.diagnostics()}"
            )
        return run


@contextlib.contextmanager
def fresh_database(prefix: str) -> Generator[str, None, None]:
    """A new PostgreSQL database named `<prefix>_<random>`, dropped afterwards; skips the
    test, saying why, when PostgreSQL cannot be reached."""
    import psycopg2
    import pytest

    try:
        admin = psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=5
        )
    except psycopg2.OperationalError as exc:
        pytest.skip(f"POSTGRESQL NOT REACHABLE at {PG_HOST}:{PG_PORT} ({exc}); .ci/run starts it")
    admin.autocommit = True
    name = f"{prefix}_{secrets.token_hex(4)}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def production_env(
    sandbox: Sandbox,
    home: Path,
    *,
    database: str,
    redis_db: int,
    api_port: int,
    passwords_file: Path,
    **extra: str,
) -> dict[str, str]:
    """Every component's environment: the same keys, database, broker and API for all."""
    from cryptography.fernet import Fernet

    pg = f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"
    env = {
        key: value
        for key, value in airflow_env(sandbox, home).items()
        # Nothing from the caller's own Airflow (AIRFLOW__*, AIRFLOW_CONFIG) leaks in.
        if not (key.startswith("AIRFLOW__") or key == "AIRFLOW_CONFIG")
    }
    env.update(
        {
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{pg.replace('+psycopg2', '')}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            # One set of keys for every component, as docker-compose's shared airflow.cfg.
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            # Runs come from the test's triggers only: unpausing the weekly DAG must not
            # also start the run of the last missed Sunday (catchup=False still makes one).
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            # Fixed ports elsewhere would collide with another Airflow on this machine.
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "8",
        }
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def production_airflow(
    sandbox: Sandbox,
    home: Path,
    *,
    database: str,
    redis_db: int,
    local_settings: str | None = None,
    **extra: str,
) -> Generator[ProductionAirflow, None, None]:
    """Migrate a fresh metadata database, start every component, yield; stop them all."""
    home.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    passwords_file = home / "simple_auth_manager_passwords.json"
    # A fixed password: the simple auth manager generates one only for users missing here.
    passwords_file.write_text(f'{{"admin": "{password}"}}\n')
    if local_settings is not None:
        (home / "config").mkdir(exist_ok=True)
        (home / "config" / "airflow_local_settings.py").write_text(local_settings)
    api_port = free_port()
    env = production_env(
        sandbox,
        home,
        database=database,
        redis_db=redis_db,
        api_port=api_port,
        passwords_file=passwords_file,
        **extra,
    )
    topology = ProductionAirflow(home=home, env=env, api_port=api_port, password=password)
    migrated = topology.run("db", "migrate")
    assert migrated.returncode == 0, (
        "airflow db migrate failed:\n" + migrated.stdout[-3000:] + migrated.stderr[-3000:]
    )
    try:
        yield topology
    finally:
        topology.stop_all()
