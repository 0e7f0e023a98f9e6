"""Starts, watches and stops the services for `make run` / `make up` / `make down`.

python -m tools.supervisor run      # foreground, logs interleaved; Ctrl-C stops everything
python -m tools.supervisor up       # background; returns once every service is SERVING
python -m tools.supervisor down | status
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from kit.config import DEFAULT_PORTS, REPO_ROOT, var_dir
from kit.net import health_status
from kit.service_identity import ENV_KEY, ENV_KEY_FILE, default_key_path, generated_key
from kit.tls import tls_required

SERVICES = ["registry", "signing", "dossier", "tasks", "gateway"]  # start order: dependencies first
START_TIMEOUT_SECONDS = 90


def port_of(service: str) -> int:
    return int(os.environ.get(f"{service.upper()}_GRPC_PORT", DEFAULT_PORTS[service]))


def run_dir() -> Path:
    path = var_dir() / "run"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    path = var_dir() / "log"
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_environment() -> dict[str, str]:
    """Each service learns where the others listen (ports may be overridden) and, in development,
    the key the gateway and dossier sign their caller assertions to signing with."""
    env = dict(os.environ)
    for other in SERVICES:
        env.setdefault(f"{other.upper()}_ADDRESS", f"127.0.0.1:{port_of(other)}")
    if not tls_required(env) and not env.get(ENV_KEY) and not env.get(ENV_KEY_FILE):
        generated_key(default_key_path())  # made once, 0600, under var/secrets
        env[ENV_KEY_FILE] = str(default_key_path())
    return env


def spawn(service: str, foreground: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", f"services.{service}"]
    env = service_environment()
    if foreground:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log_file = (log_dir() / f"{service}.log").open("ab")
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
    )
    (run_dir() / f"{service}.pid").write_text(str(process.pid))
    return process


def wait_serving(processes: dict[str, subprocess.Popen[bytes]]) -> list[str]:
    """Services that failed to come up (empty when all answer SERVING)."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    pending = set(processes)
    while pending and time.monotonic() < deadline:
        for service in sorted(pending):
            if processes[service].poll() is not None:
                return [service]
            if health_status(port_of(service)) == "SERVING":
                pending.discard(service)
        time.sleep(0.3)
    return sorted(pending)


def print_endpoints() -> None:
    for service in SERVICES:
        print(f"  {service:<9} grpc 127.0.0.1:{port_of(service)}")
    print(f"  gateway   http http://127.0.0.1:{os.environ.get('GATEWAY_HTTP_PORT', '8080')}/")
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    print(f"  kafka     {kafka}   postgres 127.0.0.1:{os.environ.get('PG_PORT', '5432')}")


def pump(service: str, process: subprocess.Popen[bytes]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        sys.stdout.write(f"{service:<9}| {line.decode(errors='replace')}")
        sys.stdout.flush()


def stop_all(processes: dict[str, subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def command_run() -> int:
    processes = {service: spawn(service, foreground=True) for service in SERVICES}
    for service, process in processes.items():
        threading.Thread(target=pump, args=(service, process), daemon=True).start()
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    failed = wait_serving(processes)
    if failed:
        print(f"supervisor: {', '.join(failed)} did not become SERVING; stopping", file=sys.stderr)
        stop_all(processes)
        return 1
    print("CityData is running (Ctrl-C stops everything):")
    print_endpoints()
    while not stopping.is_set():
        if any(p.poll() is not None for p in processes.values()):
            dead = [s for s, p in processes.items() if p.poll() is not None]
            print(f"supervisor: {', '.join(dead)} exited; stopping the platform", file=sys.stderr)
            break
        stopping.wait(0.5)
    stop_all(processes)
    return 0


def command_up() -> int:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    for service in SERVICES:
        if _running_pid(service) is not None:
            print(f"{service}: already running")
            continue
        processes[service] = spawn(service, foreground=False)
    failed = wait_serving(processes)
    if failed:
        for service in failed:
            print(f"supervisor: {service} did not become SERVING; last log lines:", file=sys.stderr)
            print(_tail(log_dir() / f"{service}.log"), file=sys.stderr)
        return 1
    print("CityData is up:")
    print_endpoints()
    return 0


def _running_pid(service: str) -> int | None:
    pidfile = run_dir() / f"{service}.pid"
    if not pidfile.exists():
        return None
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        pidfile.unlink()
        return None
    return pid


def command_down() -> int:
    for service in reversed(SERVICES):
        pid = _running_pid(service)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _running_pid(service) is not None:
            time.sleep(0.2)
        if _running_pid(service) is not None:
            os.kill(pid, signal.SIGKILL)
        (run_dir() / f"{service}.pid").unlink(missing_ok=True)
        print(f"{service}: stopped")
    return 0


def command_status() -> int:
    for service in SERVICES:
        pid = _running_pid(service)
        state = health_status(port_of(service))
        print(f"{service:<9} {state:<18} 127.0.0.1:{port_of(service)}" + (f"  pid {pid}" if pid else ""))
    return 0


def _tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def main() -> None:
    parser = argparse.ArgumentParser(description="CityData service supervisor")
    parser.add_argument("command", choices=["run", "up", "down", "status"])
    args = parser.parse_args()
    commands = {"run": command_run, "up": command_up, "down": command_down, "status": command_status}
    sys.exit(commands[args.command]())


if __name__ == "__main__":
    main()
