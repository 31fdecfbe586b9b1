"""Runs DeSGD on a local Flower federation: a SuperLink, one SuperNode per
worker, the app, all on 127.0.0.1.

    python -m desgd.flower.run_local --out /abs/run.trace \\
        --options "--model small --honest 3 --byzantine 1 --agg trmean
                   --attack alie --rounds 3 --eval-every 3"

What it does, and why each step is there:
- picks free loopback ports and binds every server to 127.0.0.1 (nothing
  listens beyond the machine);
- writes a private FLWR_HOME whose config.toml points the `flwr` CLI at this
  SuperLink, so the user's own Flower configuration is neither read nor
  changed;
- generates one Ed25519 key per worker (and, with --sign, a trace-signing
  server key) in the run directory: each SuperNode gets its key path in its
  node config, and `state-dir` (the run directory's client-state/), where its
  ClientApp keeps its momenta after every round, so that any run can be
  resumed;
- with --resume, reuses the run directory's keys and state files and continues
  the trace after its last complete round (the ServerApp's run config
  `resume`); every start in a run directory gets logs, a SuperLink database and
  a summary of its own (logs/, logs-2/, ...);
- runs `flwr run APP local --stream` with the run config, then asks `flwr ls`
  for the run's status: `flwr run` exits 0 even when the ServerApp crashed, so
  only "finished:completed" counts;
- bounds every wait (start-up, the run) and stops every process it started, by
  process group, on success, failure and Ctrl-C.
Exit status 0 on success; otherwise 1, with one line on stderr saying what
failed (the logs stay in the run directory); 130 when interrupted (Ctrl-C,
SIGTERM, or --stop-after): the trace is closed after the completed rounds and
the clients' state files stay, so `--resume` continues the run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from desgd.flower.options import parse_options, split_options

__all__ = ["Federation", "main"]


class RunFailed(RuntimeError):
    """A step of the local federation failed; the message is the one line
    printed."""


class StoppedAfter(KeyboardInterrupt):
    """--stop-after N: round N was recorded, the federation is stopped as by
    Ctrl-C."""


# The ServerApp's log line at the start of live round t
# (DesgdStrategy.configure_train): round t−1 is recorded by then.
ROUND_STARTED = re.compile(rb"desgd: round (\d+), S_t")
CLIENT_STATE = "client-state"


def attempt_suffix(run_dir: Path) -> str:
    """ "" for the first start in `run_dir`, "-2", "-3", ... after it: each
    start's logs, SuperLink database, run config and summary are its own (a
    resumed run's SuperLink must not list the stopped run, and the stopped
    run's logs stay)."""
    if not (run_dir / "logs").exists():
        return ""
    k = 2
    while (run_dir / f"logs-{k}").exists():
        k += 1
    return f"-{k}"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS's choice; the window
    until use is tiny)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    port: int,
    process: subprocess.Popen[bytes],
    what: str,
    timeout: float,
    log: Path,
) -> None:
    """Until 127.0.0.1:port accepts connections; fails when `process` exits or
    `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RunFailed(
                f"{what} exited with status {process.returncode} while"
                f" starting (log: {log})"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RunFailed(
        f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s"
        f" (log: {log})"
    )


def default_app() -> Path:
    """examples/flower-desgd of the checkout this package lives in, or of the
    current directory's."""
    for parent in [
        *Path(__file__).resolve().parents,
        *(Path.cwd() / "x").parents,
    ]:
        candidate = parent / "examples" / "flower-desgd"
        if (candidate / "pyproject.toml").is_file():
            return candidate
    raise RunFailed(
        "examples/flower-desgd not found above the package or the current"
        " directory: pass --app DIR"
    )


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escaping is valid TOML for these
    characters)."""
    return json.dumps(value)


class Federation:
    """The processes of one local federation; `stop()` ends them all
    (idempotent)."""

    def __init__(
        self,
        run_dir: Path,
        bin_dir: Path,
        env: dict[str, str],
        logs: str = "logs",
    ) -> None:
        self.run_dir = run_dir
        self.bin = bin_dir
        self.env = env
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs = run_dir / logs
        self.logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Starts `argv` in a new process group (so that its children, the
        ServerApp and ClientApp processes Flower spawns, are stopped with it),
        output to logs/NAME.log."""
        log = open(  # noqa: SIM115 (closed with the process)
            self.logs / f"{name}.log", "wb"
        )
        try:
            p = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.run_dir,
                start_new_session=True,
            )
        finally:
            log.close()
        self.processes.append((name, p))
        return p

    def check_alive(self) -> None:
        for name, p in self.processes:
            if p.poll() is not None:
                raise RunFailed(
                    f"{name} exited with status {p.returncode} (log:"
                    f" {self.logs / (name + '.log')})"
                )

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM to every process started and to all their descendants, then
        SIGKILL to those still there after `grace` s. Descendants are collected
        first, by pid, because Flower starts the ServerApp in a session of its
        own: signalling process groups alone would orphan it. SIGTERM reaches
        the ServerApp as a graceful exit, so it closes the trace after the
        completed rounds."""
        pids: list[int] = []
        for _, p in self.processes:
            if p.poll() is None:
                pids.append(p.pid)
            pids.extend(descendants(p.pid))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _, p in self.processes:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            for _, p in self.processes:
                # reap our children so that they do not linger as zombies
                p.poll()
            time.sleep(0.2)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _, p in self.processes:
            try:
                # also the group's stragglers (ClientApp processes)
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if p.poll() is None:
                p.wait(timeout=5)
        self.processes.clear()


def _parents() -> dict[int, int]:
    """pid → parent pid of every process, from /proc."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[
            stat.rfind(")") + 2 :
        ].split()  # after "(comm)": state, ppid, ...
        if len(fields) > 1 and fields[1].isdigit():
            out[int(entry)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, grandchildren, ...), now."""
    parents = _parents()
    children: dict[int, list[int]] = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    out: list[int] = []
    stack = list(children.get(pid, []))
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(children.get(p, []))
    return out


def alive(pid: int) -> bool:
    """Whether `pid` is a running process (not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 : stat.rfind(")") + 3] != "Z"


def run_status(
    flwr: Path, env: dict[str, str], timeout: float
) -> list[dict[str, Any]]:
    """`flwr ls local --format json`: the runs this SuperLink knows."""
    out = subprocess.run(
        [str(flwr), "ls", "local", "--format", "json"],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    try:
        data = json.loads(out.stdout.decode())
    except json.JSONDecodeError:
        raise RunFailed(
            f"flwr ls printed no JSON (status {out.returncode}): "
            f"""{(out.stdout + out.stderr).decode(errors='replace')
                .strip()[-300:]}"""
        ) from None
    if not data.get("success", True):
        raise RunFailed(f"flwr ls failed: {data.get('error-message', data)}")
    runs = data.get("runs", [])
    return runs if isinstance(runs, list) else []


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m desgd.flower.run_local",
        description=(
            "Run DeSGD on a local Flower federation (everything on 127.0.0.1)."
        ),
    )
    p.add_argument("--out", required=True, help="the trace to write")
    p.add_argument(
        "--options",
        help=(
            "desgd-record simulation options, one string (default: the app's "
            "run config `options`)"
        ),
    )
    p.add_argument(
        "--rounds", type=int, help="appends --rounds N to the options"
    )
    p.add_argument(
        "--nodes",
        type=int,
        help=(
            "SuperNodes to start (default: what the options need; a different"
            " number is refused by the server, which this lets you check)"
        ),
    )
    p.add_argument(
        "--app",
        type=Path,
        help="the Flower app directory (default: examples/flower-desgd)",
    )
    p.add_argument(
        "--run-dir",
        type=Path,
        help="keys, logs, FLWR_HOME (default: a new temporary directory)",
    )
    p.add_argument(
        "--sign",
        action="store_true",
        help="sign the trace with a server key generated in the run dir",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace an existing trace"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help=(
            "continue the run of --out after its last complete round, with the"
            " keys and client state files of --run-dir (which must be that"
            " run's)"
        ),
    )
    p.add_argument(
        "--stop-after",
        type=int,
        metavar="N",
        help=(
            "stop the federation as Ctrl-C does once "
            "round N is recorded (for tests of --resume); exit status 130"
        ),
    )
    p.add_argument(
        "--record",
        default="full",
        help="desgd-record's --record (default full)",
    )
    p.add_argument(
        "--task",
        default="",
        help=(
            "the clients' own model and data: a task module on the PYTHONPATH"
            " (desgd.flower.task; default: desgd's CNN on Fashion-MNIST)"
        ),
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1800,
        help="seconds for the whole run (default 1800)",
    )
    p.add_argument(
        "--round-timeout",
        type=float,
        default=600,
        help="seconds for one round's replies",
    )
    p.add_argument(
        "--startup-timeout",
        type=float,
        default=60,
        help="seconds for the SuperLink to listen",
    )
    p.add_argument(
        "--library",
        type=Path,
        help="libDesgdLive.so (default: $DESGD_LIBRARY or the checkout's)",
    )
    return p.parse_args(argv)


def app_options(app: Path) -> str:
    """The `options` of the app's [tool.flwr.app.config] (what `flwr run` would
    use unchanged)."""
    import tomllib

    config = tomllib.loads((app / "pyproject.toml").read_text())
    try:
        return str(config["tool"]["flwr"]["app"]["config"]["options"])
    except KeyError:
        raise RunFailed(
            f"{app / 'pyproject.toml'} has no [tool.flwr.app.config] options:"
            " pass --options"
        ) from None


def run(a: argparse.Namespace) -> dict[str, Any]:
    """The federation, start to finish; returns the ServerApp's summary. Raises
    RunFailed."""
    app = (a.app or default_app()).resolve()
    options = split_options(
        a.options if a.options is not None else app_options(app)
    )
    if a.rounds is not None:
        options += ["--rounds", str(a.rounds)]
    try:
        shape = parse_options(options)
    except ValueError as e:
        raise RunFailed(f"options: {e}") from None
    nodes = a.nodes if a.nodes is not None else shape.nodes
    out = Path(a.out).resolve()
    if a.resume:
        if a.overwrite:
            raise RunFailed(
                "--resume and --overwrite exclude each other: a resumed run"
                " continues its trace"
            )
        if not out.is_file():
            raise RunFailed(f"--resume: there is no trace {out} to continue")
        if a.run_dir is None or not a.run_dir.is_dir():
            raise RunFailed(
                "--resume needs --run-dir, the stopped run's directory (its"
                " keys and client state)"
            )
    elif out.exists() and not a.overwrite:
        raise RunFailed(
            f"{out} exists: pass --overwrite to replace it, or --resume to"
            " continue it"
        )
    run_dir = (
        a.run_dir or Path(tempfile.mkdtemp(prefix="desgd-federation-"))
    ).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    a.run_dir = run_dir  # for main's message when the run is interrupted
    suffix = attempt_suffix(run_dir)
    bin_dir = Path(sys.executable).parent
    flwr = bin_dir / "flwr"
    for tool in ("flwr", "flower-superlink", "flower-supernode"):
        if not (bin_dir / tool).is_file():
            raise RunFailed(
                f"{bin_dir / tool} not found: install flwr==1.42.0 into this"
                " interpreter's environment"
            )

    from desgd import signing
    from desgd.live import find_library

    library = a.library.resolve() if a.library else None
    try:
        library = library or find_library()
    except FileNotFoundError as e:
        raise RunFailed(str(e)) from None

    keys = run_dir / "keys"
    keys.mkdir(exist_ok=True)
    key_paths = []
    for w in range(nodes):
        path = keys / f"worker-{w}.key"
        if not path.exists():
            # new keys would not match the trace's registered ones
            if a.resume:
                raise RunFailed(
                    f"--resume: {path} is missing: the run dir must be the"
                    " stopped run's"
                )
            signing.save_private_key(signing.generate_key(), path)
        key_paths.append(path)
    state_dir = run_dir / CLIENT_STATE
    state_dir.mkdir(exist_ok=True)
    server_key = ""
    if a.sign:
        sk = keys / "server.key"
        if not sk.exists():
            if a.resume:
                raise RunFailed(
                    f"--resume --sign: {sk} is missing: the run dir must be"
                    " the stopped run's"
                )
            signing.write_openssh_key(
                signing.generate_key(), sk, comment="desgd-federation"
            )
        server_key = str(sk)

    home = run_dir / "flwr-home"
    home.mkdir(exist_ok=True)
    link_port = free_port()
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "local"\n\n[superlink.local]\naddress ='
        f' "127.0.0.1:{link_port}"\ninsecure = true\n'
    )
    env = dict(
        os.environ,
        FLWR_HOME=str(home),
        DESGD_LIBRARY=str(library),
        PATH=f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
    )
    summary_path = run_dir / f"summary{suffix}.json"
    overrides = run_dir / f"run-config{suffix}.toml"
    overrides.write_text(
        "\n".join(
            [
                f"options = {toml_string(shlex.join(options))}",
                f"trace = {toml_string(str(out))}",
                f"overwrite = {'true' if a.overwrite else 'false'}",
                f"resume = {'true' if a.resume else 'false'}",
                f"record = {toml_string(a.record)}",
                f"task = {toml_string(a.task)}",
                f"server-key = {toml_string(server_key)}",
                f"summary = {toml_string(str(summary_path))}",
                f"nodes-timeout = {float(a.startup_timeout) + 60}",
                f"round-timeout = {float(a.round_timeout)}",
            ]
        )
        + "\n"
    )

    fed = Federation(run_dir, bin_dir, env, logs=f"logs{suffix}")
    deadline = time.monotonic() + a.timeout
    try:
        started = time.monotonic()
        link = fed.start(
            "superlink",
            [
                str(bin_dir / "flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(link_port),
                "--disable-runtime-dependency-installation",
                "--database",
                str(run_dir / f"state{suffix}.db"),
            ],
        )
        wait_for_port(
            link_port,
            link,
            "flower-superlink",
            a.startup_timeout,
            fed.logs / "superlink.log",
        )
        for w in range(nodes):
            config = (
                f"partition-id={w} num-partitions={nodes}"
                f" key={toml_string(str(key_paths[w]))}"
                f" role={toml_string(shape.role(w))}"
                f" state-dir={toml_string(str(state_dir))}"
            )
            fed.start(
                f"supernode-{w}",
                [
                    str(bin_dir / "flower-supernode"),
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{link_port}",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(free_port()),
                    "--node-config",
                    config,
                    "--max-wait-time",
                    str(int(a.startup_timeout)),
                ],
            )
        time.sleep(1.0)
        fed.check_alive()
        print(
            f"desgd federation: SuperLink on 127.0.0.1:{link_port}, {nodes}"
            f" SuperNodes ({time.monotonic() - started:.1f} s); run dir"
            f" {run_dir}",
            flush=True,
        )

        flwr_log = fed.logs / "flwr-run.log"
        with open(flwr_log, "wb") as log:
            cmd = [
                str(flwr),
                "run",
                str(app),
                "local",
                "--stream",
                "--run-config",
                str(overrides),
            ]
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            fed.processes.append(("flwr run", proc))
            assert proc.stdout is not None
            os.set_blocking(proc.stdout.fileno(), False)
            pending = (  # the stream's unfinished last line, for --stop-after
                b""
            )
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise RunFailed(
                        f"the run did not finish within {a.timeout:.0f} s"
                        f" (logs: {fed.logs})"
                    )
                chunk = proc.stdout.read()
                if chunk:
                    log.write(chunk)
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                    if a.stop_after is not None:
                        *lines, pending = (pending + chunk).split(b"\n")
                        started_rounds = [
                            int(m.group(1))
                            for line in lines
                            for m in [ROUND_STARTED.search(line)]
                            if m
                        ]
                        if any(t > a.stop_after for t in started_rounds):
                            log.flush()
                            raise StoppedAfter(
                                f"round {a.stop_after} recorded"
                            )
                else:
                    time.sleep(0.2)
            rest = proc.stdout.read()
            if rest:
                log.write(rest)
                sys.stdout.buffer.write(rest)
                sys.stdout.flush()
        if proc.returncode != 0:
            raise RunFailed(
                f"flwr run exited with status {proc.returncode} (log:"
                f" {flwr_log})"
            )
        runs = run_status(
            flwr, env, timeout=max(5.0, min(60.0, deadline - time.monotonic()))
        )
        if len(runs) != 1:
            raise RunFailed(
                f"flwr ls lists {len(runs)} runs on this SuperLink, expected 1"
            )
        status = str(runs[0].get("status", ""))
        if status != "finished:completed":
            summary: dict[str, Any] = (
                json.loads(summary_path.read_text())
                if summary_path.is_file()
                else {}
            )
            why = summary.get("failure") or f"see {fed.logs / 'flwr-run.log'}"
            raise RunFailed(
                f"the run ended {status or 'with no status'}: {why}"
            )
        if not summary_path.is_file():
            raise RunFailed(f"the ServerApp wrote no summary ({summary_path})")
        summary = json.loads(summary_path.read_text())
        summary["wallSeconds"] = time.monotonic() - started
        summary["runDir"] = str(run_dir)
        return summary
    finally:
        fed.stop()


def main(argv: list[str] | None = None) -> int:
    a = parse_arguments(argv)
    # SIGTERM and SIGINT (even when a non-interactive shell started us with
    # SIGINT ignored) both stop the federation through the same path as Ctrl-C:
    # the `finally` that stops every process group.
    previous = signal.signal(
        signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt())
    )
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    # A parent may have started us with these signals blocked (a thread of a
    # test runner's pool blocks them, and the mask is inherited across exec):
    # every process started below inherits our mask, and the ServerApp must
    # receive SIGTERM to close the trace.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        summary = run(a)
    except RunFailed as e:
        print(f"desgd federation failed: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        why = (
            f"stopped after round {a.stop_after} (--stop-after)"
            if isinstance(e, StoppedAfter)
            else "interrupted"
        )
        print(
            f"desgd federation {why}: every process it started was stopped;"
            " the trace holds the completed rounds and the clients' momenta"
            " are in the run dir: continue with --resume --run-dir"
            f" {a.run_dir}",
            file=sys.stderr,
        )
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
    rounds = summary.get("rounds", [])
    walls = [r["wall"] for r in rounds]
    evals = summary.get("evaluations", {})
    last = max(evals, key=int) if evals else None
    print(
        f"desgd federation finished: {len(rounds)} rounds in"
        f" {summary['wallSeconds']:.1f} s (registration"
        f" {summary.get('registrationSeconds', 0):.1f} s; round"
        f" {min(walls, default=0):.1f}-{max(walls, default=0):.1f} s, live"
        f" server {sum(r['live'] for r in rounds):.2f} s in all)"
        + (
            f"; accuracy {evals[last]['accuracy']:.4f} after round {last}"
            if last is not None
            else ""
        )
        + f"; trace {a.out}"
        + (
            f" (resumed at round {summary.get('firstRound', 0)})"
            if a.resume
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
