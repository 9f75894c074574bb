"""gunicorn settings shared by every service's web process.

prometheus-client's multiprocess mode needs its directory in the environment before any worker imports
the client, emptied when the server starts, and each dead worker's files marked as such.
"""

import os
import shutil
import tempfile

bind = f"{os.environ.get('WERKBRUG_HOST', '127.0.0.1')}:{os.environ.get('WERKBRUG_PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 10
accesslog = None
# Four services run side by side locally; their masters would fight over one default control socket.
control_socket_disable = True
# Worker heartbeat files in memory, not on a possibly slow or read-only disk.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108

# Set before prometheus_client is first imported anywhere: it picks its value class at import time, and
# workers inherit the master's modules when they fork.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="werkbrug-metrics-"))


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
