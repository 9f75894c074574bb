"""A single-node Apache Kafka broker (KRaft) for development and tests.

The broker is the real one, resolved from Maven Central by deploy/kafka/fetch-broker.sh into
.cache/kafka/lib, so what runs here speaks exactly the protocol production does.

As a library::

    with KafkaBroker(tmp_path / "kafka", port=p, controller_port=c) as broker:
        ensure_topics(broker.bootstrap_servers)  # from shared.topics

In the foreground, for a process runner such as honcho::

    python -m shared.devstack.broker --data-dir var/kafka --port 9092 --controller-port 9093 --create-topics
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from shared.topics import ensure_topics

log = logging.getLogger(__name__)

_HOST = "127.0.0.1"
_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")


def _find_repo_root() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "deploy" / "kafka" / "pom.xml").is_file():
            return parent
    # Installed without the repo around it: shared/devstack/broker.py is still two levels down.
    return here.parents[2]


REPO_ROOT = _find_repo_root()


def default_lib_dir() -> Path:
    override = os.environ.get("WERKBRUG_KAFKA_LIB")
    return Path(override) if override else REPO_ROOT / ".cache" / "kafka" / "lib"


class BrokerError(RuntimeError):
    """The broker could not be formatted, started or stopped."""


def free_ports(count: int = 1) -> list[int]:
    """Ports on 127.0.0.1 that nothing listens on right now.

    All sockets are held open until every port is picked, so the ports are distinct.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((_HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # The JVM binds with SO_REUSEADDR too, so a port left in TIME_WAIT by a previous broker
        # (e.g. right after kill()) counts as free here exactly when it is free for Kafka.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((_HOST, port))
        except OSError:
            return False
    return True


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((_HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def new_cluster_id() -> str:
    """A cluster id in the form Kafka's own `kafka-storage random-uuid` prints."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # Kafka refuses ids that start with '-' since they read as command-line flags.
        if not cluster_id.startswith("-"):
            return cluster_id


def _read_properties(path: Path) -> dict[str, str]:
    props: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, _, value = line.partition("=")
        props[key.strip()] = value.strip()
    return props


class KafkaBroker:
    """One Kafka process acting as both broker and KRaft controller, with all state in data_dir.

    Keep using a data_dir with the ports it was formatted with: the controller's address is
    recorded in its metadata log, and a start on other ports works but takes seconds longer.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = 9092,
        controller_port: int = 9093,
        lib_dir: Path | None = None,
        heap: str = "512m",
        *,
        log_level: str | None = None,
        die_with_parent: bool = True,
    ) -> None:
        if port == controller_port:
            raise ValueError("port and controller_port must differ")
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.controller_port = controller_port
        self.lib_dir = Path(lib_dir).absolute() if lib_dir is not None else default_lib_dir().absolute()
        self.heap = heap
        level = (log_level or os.environ.get("WERKBRUG_KAFKA_LOG_LEVEL") or "WARN").upper()
        if level not in _LOG_LEVELS:
            raise ValueError(f"log_level must be one of {', '.join(_LOG_LEVELS)}, not {level!r}")
        self.log_level = level
        # If whoever started the broker dies without cleaning up (SIGKILL, a crashed test run),
        # the JVM would otherwise linger and hold the ports until someone finds and kills it.
        self.die_with_parent = die_with_parent
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None
        self._log_offset = 0

    # -- paths -------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return f"{_HOST}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log4j_file(self) -> Path:
        return self.data_dir / "log4j2.properties"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    # -- configuration -----------------------------------------------------------------------

    def server_properties(self) -> dict[str, str]:
        controller = f"{_HOST}:{self.controller_port}"
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": controller,
            "listeners": f"PLAINTEXT://{_HOST}:{self.port},CONTROLLER://{controller}",
            "advertised.listeners": f"PLAINTEXT://{_HOST}:{self.port},CONTROLLER://{controller}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(self.log_dir),
            "num.partitions": "6",
            "auto.create.topics.enable": "false",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            # The internal topics default to 3 replicas, which a single node can never satisfy.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # The default 50 partitions per internal topic make the first consumer group (and
            # every broker start) noticeably slower, for no benefit on one node.
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.num.partitions": "6",
            "share.coordinator.state.topic.num.partitions": "6",
            # After a crash the restarted controller only accepts the broker's new registration once
            # the old incarnation's session has expired: 9 s by default, on every kill-and-restart.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "500",
            # Tests start consumer groups constantly; the default 3 s delay would add up.
            "group.initial.rebalance.delay.ms": "0",
            # Let the cleaner look at compacted topics every second instead of every 15, and
            # keep its dedupe buffer small, since it is allocated on the heap up front.
            "log.cleaner.backoff.ms": "1000",
            "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
            "log.cleaner.threads": "1",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "num.recovery.threads.per.data.dir": "1",
        }

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = ["# Generated by shared/devstack/broker.py; edits are overwritten on every start."]
        lines += [f"{key}={value}" for key, value in self.server_properties().items()]
        self.properties_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        # Everything goes to stdout, which start() sends to broker.log: one file holds the
        # broker's own messages and anything the JVM prints when it fails before log4j is up.
        self.log4j_file.write_text(
            "\n".join(
                [
                    "# Generated by shared/devstack/broker.py; edits are overwritten on every start.",
                    "status = warn",
                    "appender.out.type = Console",
                    "appender.out.name = STDOUT",
                    "appender.out.target = SYSTEM_OUT",
                    "appender.out.layout.type = PatternLayout",
                    "appender.out.layout.pattern = [%d] %p %m (%c)%n",
                    f"rootLogger.level = {self.log_level}",
                    "rootLogger.appenderRef.out.ref = STDOUT",
                    # Kept at INFO whatever the root level, so the log always shows which version
                    # ran and when it was ready.
                    "logger.raft.name = kafka.server.KafkaRaftServer",
                    "logger.raft.level = INFO",
                    "logger.appinfo.name = org.apache.kafka.common.utils.AppInfoParser",
                    "logger.appinfo.level = INFO",
                ]
            )
            + "\n",
            encoding="utf-8",
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def is_formatted(self) -> bool:
        return (self.log_dir / "meta.properties").is_file()

    def cluster_id(self) -> str | None:
        meta = self.log_dir / "meta.properties"
        if not meta.is_file():
            return None
        return _read_properties(meta).get("cluster.id")

    def format(self) -> bool:
        """Format data_dir as a fresh single-node cluster; False if it already was."""
        if self.is_formatted():
            return False
        self.write_config()
        cmd = [
            self._java(),
            "-Xmx256m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            "-cp",
            self._classpath(),
            "kafka.tools.StorageTool",
            "format",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(self.properties_file),
            "--standalone",
            "--ignore-formatted",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0 or not self.is_formatted():
            raise BrokerError(
                f"formatting {self.log_dir} failed (exit {result.returncode}):\n{result.stdout}{result.stderr}".rstrip()
            )
        return True

    def start(self, timeout: float = 60) -> None:
        """Start the broker and return once it serves clients; formats data_dir first if needed."""
        if self.is_running():
            raise BrokerError(f"broker on {self.bootstrap_servers} is already running (pid {self.pid})")
        self._close_log()
        for name, port in (("port", self.port), ("controller port", self.controller_port)):
            if not _port_is_free(port):
                # Otherwise the readiness check below could happily talk to someone else's broker.
                raise BrokerError(f"{name} {port} on {_HOST} is already in use (another broker, e.g. `make run`?)")
        self.format()
        self.write_config()
        cluster_id = self.cluster_id()

        cmd = [self._java(), *self._jvm_flags(), "-cp", self._classpath(), "kafka.Kafka"]
        cmd.append(str(self.properties_file))
        if self.die_with_parent and (setpriv := shutil.which("setpriv")):
            # The signal fires when the thread that started the broker exits, so brokers should
            # be started from a long-lived thread (the main thread, in practice).
            cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]

        self._log_handle = self.log_file.open("ab")
        self._log_offset = self._log_handle.tell()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._log_handle.write(f"---- {stamp} starting broker on {self.bootstrap_servers}\n".encode())
        self._log_handle.flush()
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )
        try:
            self._wait_until_ready(cluster_id, time.monotonic() + timeout, timeout)
        except BrokerError:
            self.kill()
            raise
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): the broker itself is fine, so let it shut down cleanly.
            self.stop(timeout=15)
            raise

    def _wait_until_ready(self, cluster_id: str | None, deadline: float, timeout: float) -> None:
        from kafka import KafkaAdminClient

        last_error: Exception | None = None
        while True:
            code = self._proc.poll() if self._proc is not None else -1
            if code is not None:
                raise BrokerError(
                    f"broker exited with code {code} during startup; end of {self.log_file}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"broker not ready on {self.bootstrap_servers} after {timeout:.0f}s"
                    f" (last error: {last_error!r}); end of {self.log_file}:\n{self.log_tail()}"
                )
            # The Kafka client logs every refused connection loudly, so wait for the port first.
            if not _port_accepts(self.port):
                time.sleep(0.1)
                continue
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers,
                    client_id="werkbrug-devstack-probe",
                    bootstrap_timeout_ms=int(max(0.5, min(remaining, 5)) * 1000),
                    request_timeout_ms=5000,
                )
                try:
                    cluster = admin.describe_cluster()
                finally:
                    admin.close()
            except Exception as exc:
                last_error = exc
                time.sleep(0.2)
                continue
            if cluster.get("brokers") and (cluster_id is None or cluster.get("cluster_id") == cluster_id):
                return
            last_error = BrokerError(f"unexpected cluster metadata {cluster!r}")
            time.sleep(0.2)

    def wait(self, timeout: float | None = None) -> int:
        """Block until the broker exits and return its exit code."""
        if self._proc is None:
            raise BrokerError("broker was never started")
        return self._proc.wait(timeout)

    def stop(self, timeout: float = 30) -> int | None:
        """Shut the broker down cleanly (SIGTERM), or SIGKILL it after timeout seconds."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("broker on %s ignored SIGTERM for %ss; killing it", self.bootstrap_servers, timeout)
                self._signal(signal.SIGKILL)
                proc.wait()
        self._close_log(f"stopped (exit code {proc.returncode})")
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL the broker now, as a crash would; restart() brings it back on the same data."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal(signal.SIGKILL)
            proc.wait()
        self._close_log(f"killed (exit code {proc.returncode})")

    def restart(self, timeout: float = 60) -> None:
        if self.is_running():
            self.stop()
        self.start(timeout=timeout)

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the current (or last) broker process wrote to broker.log."""
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(self._log_offset)
                text = fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return "(no broker.log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running() else "stopped"
        return f"<KafkaBroker {self.bootstrap_servers} data_dir={self.data_dir} {state}>"

    # -- internals ---------------------------------------------------------------------------

    def _signal(self, signum: int) -> None:
        assert self._proc is not None
        # The broker leads its own process group (start_new_session), so this also reaches
        # anything it forked, and a Ctrl-C in the terminal never reaches it directly.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signum)

    def _close_log(self, note: str | None = None) -> None:
        if self._log_handle is None:
            return
        if note:
            # Marks where one run ends, since restarts append to the same broker.log.
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._log_handle.write(f"---- {stamp} broker {note}\n".encode())
        self._log_handle.close()
        self._log_handle = None

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").is_file():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise BrokerError("java not found on PATH (Kafka needs Java 17+: apt-get install openjdk-17-jre-headless)")
        return java

    def _classpath(self) -> str:
        if not any(self.lib_dir.glob("kafka_2.13-*.jar")):
            raise BrokerError(
                f"no Kafka jars in {self.lib_dir}; run deploy/kafka/fetch-broker.sh (or `make setup`),"
                " or point WERKBRUG_KAFKA_LIB at a directory holding them"
            )
        # Java expands a trailing '*' itself, which keeps the command line short.
        return str(self.lib_dir / "*")

    def _jvm_flags(self) -> list[str]:
        return [
            f"-Xmx{self.heap}",
            "-Xms64m",
            # A single-node dev broker has a small heap and two cores to share with the tests;
            # the serial collector starts fastest and uses no extra threads.
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            "-Djava.net.preferIPv4Stack=true",
            f"-Dlog4j2.configurationFile={self.log4j_file}",
            f"-Dkafka.logs.dir={self.data_dir}",
            # Kafka logs its own shutdown from a JVM shutdown hook; log4j must not close first.
            "-Dlog4j2.shutdownHookEnabled=false",
        ]


# -- command line ------------------------------------------------------------------------------


class _Terminate(Exception):
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.devstack.broker",
        description="Run a single-node Kafka broker in the foreground until SIGTERM or Ctrl-C.",
    )
    parser.add_argument("--data-dir", type=Path, default=Path("var/kafka"))
    parser.add_argument("--port", type=int, default=9092)
    parser.add_argument("--controller-port", type=int, default=9093)
    parser.add_argument("--lib-dir", type=Path, default=None, help="default: $WERKBRUG_KAFKA_LIB or .cache/kafka/lib")
    parser.add_argument("--heap", default="512m")
    parser.add_argument("--start-timeout", type=float, default=60)
    parser.add_argument("--create-topics", action="store_true", help="create the topics in shared/topics.py")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    broker = KafkaBroker(
        args.data_dir,
        port=args.port,
        controller_port=args.controller_port,
        lib_dir=args.lib_dir,
        heap=args.heap,
    )
    signals_seen = 0

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal signals_seen
        signals_seen += 1
        if signals_seen == 1:
            raise _Terminate(signum)
        # Asked twice: whoever is waiting does not want a clean shutdown any more. Only the
        # signal is sent here; the stop() this interrupts is already waiting for the exit.
        if broker.is_running() and broker.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(broker.pid, signal.SIGKILL)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        broker.start(timeout=args.start_timeout)
        if args.create_topics:
            ensure_topics(broker.bootstrap_servers)
        print(f"kafka ready on {broker.bootstrap_servers}", flush=True)
        code = broker.wait()
        print(
            f"kafka broker exited unexpectedly with code {code}; end of {broker.log_file}:\n{broker.log_tail()}",
            file=sys.stderr,
            flush=True,
        )
        # Shell convention for a broker killed by a signal (e.g. the OOM killer): 128 + signal number.
        return 128 - code if code < 0 else code or 1
    except _Terminate:
        return 0
    except Exception as exc:
        print(f"kafka broker failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        # From here on a signal means "hurry up", not "start shutting down".
        signals_seen = max(signals_seen, 1)
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
