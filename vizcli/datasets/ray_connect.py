"""Joining Ray for ``--engine ray``: a new local Ray or a cluster, checked before ``ray.init`` blocks.

``ray_session`` starts a local Ray (with the actors' environment, which its workers inherit) or
joins the one at an address: a closed port fails at once (``probe_address``), a port that is open
but is not a Ray head's GCS fails within the timeout (``_probe_gcs``), and SIGTERM while joining
stops vizcli with its interrupted line. With ``quiet`` Ray's loggers, and its C++ core, say nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from vizcli.common.errors import Interrupted, RunFailure

CONNECT_TIMEOUT = 60.0  # seconds to join a cluster (--ray-timeout)
# Ray's C++ core reads its log level when ray.init starts it in this process: with quiet, only fatal lines
# (else it logs, as an error, that Ray Data put the actors' constructor arguments in the object store:
# ray-project/ray#53727, on every run); a level the user set wins. Setting it logs one line itself, while
# ray.init runs, so with quiet ray.init's own writes to stderr go nowhere (its failures still raise)
QUIET_CORE = {"RAY_BACKEND_LOG_LEVEL": "fatal"}


@contextlib.contextmanager
def ray_session(address: str | None, cpus: int, quiet: bool = False, timeout: float = CONNECT_TIMEOUT,
                env: dict[str, str] | None = None) -> Iterator[Any]:
    """A connected Ray: a new local one with ``cpus`` CPUs (``address`` None), the cluster that
    ``RAY_ADDRESS`` names (``auto``), or the one at ``address``, joined within ``timeout`` seconds;
    shut down again on exit. A new local Ray's processes, and so every worker it starts, get
    ``env`` (they inherit the environment ``ray.init`` runs in; this process's is put back after)."""
    import logging
    import signal

    import ray

    if ray.is_initialized():  # a caller's own session (the Python API): use it, leave it running
        yield ray
        return
    _quiet_ray_logs(quiet)
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR if quiet else logging.WARNING,
                               "log_to_driver": not quiet}
    if address is None:
        # "local": always a new Ray, even where /tmp/ray/ray_current_cluster names one that another run (or a
        # test's ray.cluster_utils.Cluster) started; with None, ray.init would join that one, or fail if it is gone
        options.update(address="local", num_cpus=cpus)
    else:
        options["address"] = address
        probe_address(address, timeout)
        _probe_gcs(address, timeout)
    where = "a new local Ray" if address is None else f"Ray at {address!r}"
    ours = signal.getsignal(signal.SIGTERM)
    try:
        with _environment({**(env if address is None and env else {}), **(QUIET_CORE if quiet else {})}), _silenced_stderr(quiet):
            ray.init(**options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        ray.shutdown()
        raise RunFailure(f"could not start or join {where}: {str(error).splitlines()[0] if str(error) else type(error).__name__}; "
                         "check the address (ray status on the head node) or drop ray_address= to start a local Ray") from None
    except SystemExit as stop:  # ray.init's own SIGTERM handler (sys.exit(15)) while it connects
        ray.shutdown()
        if stop.code == signal.SIGTERM:
            raise Interrupted(signal.SIGTERM) from None
        raise
    except BaseException:  # a signal while Ray starts: stop what has started
        ray.shutdown()
        raise
    finally:
        if callable(ours):  # ray.init installs a SIGTERM handler that exits without cleaning up: put ours back
            signal.signal(signal.SIGTERM, ours)
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = not quiet
    context.execution_options.preserve_order = False  # units are named by position: any order joins in input order
    try:
        yield ray
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _silenced_stderr(silenced: bool) -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null while ``silenced`` (C++ code writes there directly)."""
    if not silenced:
        yield
        return
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


@contextlib.contextmanager
def _environment(env: dict[str, str] | None) -> Iterator[None]:
    """``os.environ`` with ``env`` added (values already set win), put back on exit."""
    added = {name: value for name, value in (env or {}).items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def probe_address(address: str, timeout: float) -> None:
    """``RunFailure`` at once if nothing listens at ``address`` (``host:port``, ``ray://host:port``;
    ``auto`` is resolved from ``RAY_ADDRESS``), instead of ray.init's minutes of retries."""
    import socket

    if address == "auto":
        address = os.environ.get("RAY_ADDRESS", "auto")
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" with no RAY_ADDRESS, or a form Ray resolves itself: the deadline still holds
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=min(timeout, 10.0)):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise RunFailure(f"could not join Ray at {address!r}: {reason} (nothing listens there); start the head with "
                         "ray start --head, check the address with ray status, or drop ray_address= to start a local Ray") from None


def _probe_gcs(address: str, timeout: float) -> None:
    """Connect to the cluster's GCS in a thread and wait at most ``timeout`` seconds: ray.init blocks
    inside Ray's C++ client (no signal handler runs there) for minutes when a port is open but is not
    Ray's. The thread releases the GIL while it waits, so SIGTERM still stops vizcli at once."""
    import threading
    import time

    if address.startswith("ray://"):
        return  # Ray Client: the TCP probe is all that is checked before ray.init
    result: dict[str, Any] = {}

    def connect() -> None:
        try:
            from ray._private.services import canonicalize_bootstrap_address
            from ray._raylet import GcsClient  # type: ignore[attr-defined]

            target = canonicalize_bootstrap_address(address) or address
            result["cluster"] = GcsClient(address=target).cluster_id
        except ImportError:
            result["cluster"] = None  # another Ray version: leave it to ray.init
        except Exception as error:  # the client's own errors
            result["error"] = " ".join(str(error).split())[:200] or type(error).__name__

    thread = threading.Thread(target=connect, name="vizcli-ray-probe", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.1)  # short waits: a signal's handler runs between them
    if thread.is_alive():
        raise RunFailure(f"could not join Ray at {address!r} within {timeout:g} s (raise ray_timeout=SECONDS): something listens there "
                         "but it is not a Ray head's GCS; check the address with ray status on the head node")
    if "error" in result:
        raise RunFailure(f"could not join Ray at {address!r}: {result['error']}; check the address (ray status on the head node)")


def _quiet_ray_logs(quiet: bool) -> None:
    """With ``quiet``, Ray's and Ray Data's own loggers say only errors (their INFO lines otherwise reach stderr)."""
    import logging

    if quiet:
        import ray.data  # noqa: F401 (it configures its loggers on import: set ours after that)

        for name in ("ray", "ray.data", "ray._private", "ray.util"):
            logging.getLogger(name).setLevel(logging.ERROR)
