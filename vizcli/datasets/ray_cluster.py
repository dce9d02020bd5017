"""The Ray cluster as Ray sees it, for ``--engine ray``: a run refused at once when the cluster can never
place its actors, and a watchdog that ends a run that makes no progress, saying why.

``check_placeable`` counts, node by node, how many actors of ``threads`` CPUs each fit (an actor lives
on one node) and refuses ``workers`` beyond that before any work starts. ``Watchdog`` ends a run when,
for ``stall_timeout`` seconds, no unit summary reached the driver and no file appeared in or left the
output folder (a unit's claim when it starts, its finished parts every ``commit_seconds``). Its message
is Ray's own view at that moment: the nodes and their free CPUs, the run's actors by state (alive,
pending, restarting) and where they are, the resource demands the cluster cannot meet, and so what to
change.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vizcli.common.errors import BadInput

ACTOR_CLASS = "_UnitActor"  # Ray Data names the actors MapWorker(MapBatches(_UnitActor))


def node_cpus(ray: Any) -> list[float] | None:
    """The CPUs of each live node (None when this connection cannot list nodes)."""
    try:
        return [float(node.get("Resources", {}).get("CPU", 0.0)) for node in ray.nodes() if node.get("Alive")]
    except Exception:  # noqa: BLE001 (a client connection may not list nodes)
        return None


def room_for(cpus: list[float], threads: int) -> int:
    """Actors of ``threads`` CPUs the nodes can hold at once (an actor lives on one node)."""
    return sum(int(cpu // threads) for cpu in cpus)


def check_placeable(ray: Any, workers: int, threads: int) -> None:
    """``BadInput`` when the cluster's nodes cannot hold ``workers`` actors of ``threads`` CPUs at once:
    Ray would wait for ever (or for an autoscaler) instead of failing."""
    cpus = node_cpus(ray)
    if cpus is None:
        return
    room = room_for(cpus, threads)
    if room >= workers:
        return
    shown = " + ".join(f"{cpu:g}" for cpu in sorted(cpus, reverse=True)) or "no"
    nodes_text = f"its {len(cpus)} node has" if len(cpus) == 1 else f"its {len(cpus)} nodes have"
    fix = f"use workers={room} or fewer, or add nodes" if room else f"add nodes of {threads:g} CPUs or more, or lower threads="
    raise BadInput(f"the Ray cluster has room for {room} actors of {threads:g} CPU{'s' if threads != 1 else ''} ({nodes_text} "
                   f"{shown} CPUs); {fix}", parameter="workers", value=workers)


class Stalled(Exception):  # noqa: N818 (raised in the main thread by the watchdog's signal, caught by the engine)
    """The watchdog saw no progress for its whole timeout; ``message`` says why, from Ray's view."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Shrunk(Exception):  # noqa: N818 (raised in the main thread by the watchdog's signal, caught by the engine)
    """Nodes were lost: the cluster now holds only ``room`` (at least one) of the run's actors."""

    def __init__(self, room: int) -> None:
        super().__init__(f"room for {room} actors")
        self.room = room


class Watchdog:
    """A thread that checks the run's progress every few seconds. When it has seen none for ``timeout``
    seconds it asks Ray why, then raises ``Stalled`` in the main thread (by a signal to it, which also
    wakes a blocking wait), again at each check until the engine stops. When ``room()`` (the actors the
    live nodes can hold) falls below ``workers`` but not to 0, nodes were lost and the actors they held
    can never come back: it raises ``Shrunk`` at once, so the engine goes on with fewer. Disabled (a
    no-op) outside the main thread, where no signal handler can be set."""

    def __init__(self, folder: Path, timeout: float, explain: Callable[[float], str], room: Callable[[], int | None] | None = None,
                 workers: int = 1, clock: Callable[[], float] = time.monotonic) -> None:
        self.folder, self.timeout, self.explain, self.clock = folder, timeout, explain, clock
        self.room, self.workers = room, workers
        self.shrunk: int | None = None
        self.period = min(5.0, max(0.2, timeout / 20))
        self.last = clock()
        self.seen = self._files()
        self.message: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: Any = None
        self._main = 0

    def progressed(self) -> None:
        """The driver received a unit's summary."""
        self.last = self.clock()

    def __enter__(self) -> Watchdog:
        if threading.current_thread() is not threading.main_thread():
            return self
        self._previous = signal.signal(signal.SIGALRM, self._on_signal)
        self._main = threading.get_ident()
        self._thread = threading.Thread(target=self._watch, name="vizcli-ray-watchdog", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            signal.signal(signal.SIGALRM, self._previous if self._previous is not None else signal.SIG_DFL)

    def _on_signal(self, signal_number: int, frame: Any) -> None:
        if self._stop.is_set():
            return
        if self.shrunk is not None:
            raise Shrunk(self.shrunk)
        if self.message is not None:
            raise Stalled(self.message)

    def _watch(self) -> None:
        while not self._stop.wait(self.period):
            room = self.room() if self.room is not None else None
            if room is not None and 0 < room < self.workers:
                self.shrunk = room
                signal.pthread_kill(self._main, signal.SIGALRM)
                continue
            files = self._files()
            if files != self.seen:
                self.seen, self.last = files, self.clock()
                continue
            idle = self.clock() - self.last
            if idle < self.timeout:
                continue
            if self.message is None:
                try:
                    self.message = self.explain(idle)
                except Exception as error:  # noqa: BLE001 (Ray's view is a courtesy: the run still ends)
                    self.message = f"the Ray run made no progress for {idle:.0f} s ({type(error).__name__} while asking Ray why)"
            signal.pthread_kill(self._main, signal.SIGALRM)  # again each period: a raise a library swallowed is repeated

    def _files(self) -> frozenset[str]:
        """The units and claims in the output folder: a unit starting, or a part written, is progress."""
        try:
            with os.scandir(self.folder) as entries:
                return frozenset(entry.name for entry in entries if entry.name.startswith(("part-", ".claim-")))
        except OSError:
            return frozenset()


def stall_message(ray: Any, idle: float, workers: int, threads: int) -> str:
    """Why the run has made no progress for ``idle`` seconds, from Ray's own view of the cluster."""
    nodes = _nodes(ray)
    total = sum(node["cpus"] for node in nodes)
    free = sum(node["free"] for node in nodes)
    states = _actor_states(ray)
    alive = states.get("ALIVE", [])
    waiting = {state: len(found) for state, found in states.items() if state not in ("ALIVE", "DEAD")}
    ours = len(alive) * threads
    others = max(0.0, total - free - ours)
    parts = [f"the Ray run made no progress for {idle:.0f} s (no unit finished, no part written)"]
    node_text = ", ".join(f"{node['name']} {node['free']:g}/{node['cpus']:g}" for node in nodes) or "none"
    parts.append(f"the cluster has {total:g} CPUs on {len(nodes)} live node{'s' if len(nodes) != 1 else ''}, {free:g} free "
                 f"(free/total: {node_text})")
    actor_text = f"{len(alive)} of workers={workers} actors alive, holding {ours:g} CPUs"
    if waiting:
        actor_text += ", " + ", ".join(f"{count} {state.lower().replace('_', ' ')}" for state, count in sorted(waiting.items()))
    parts.append(actor_text)
    if others > 0:
        parts.append(f"{others:g} CPUs are held by other tasks or jobs")
    demands = _demands(ray)
    if demands:
        parts.append(f"Ray has pending demands it cannot place: {demands}")
    room = sum(int(node["cpus"] // threads) for node in nodes)
    if room == 0:
        fix = f"no live node has {threads:g} free CPU{'s' if threads != 1 else ''} for an actor: add nodes"
    elif room < workers:
        fix = f"the cluster now has room for {room} of the workers={workers} actors: add nodes or rerun with workers={room}"
    elif others > 0:
        fix = "other work holds the CPUs the actors need: wait for it or lower workers="
    else:
        fix = "if a unit legitimately takes this long (a slow model, a large --shard-size), raise stall_timeout="
    parts.append(fix)
    parts.append("finished units are kept: rerun with resume=True")
    return "; ".join(parts)


def _nodes(ray: Any) -> list[dict[str, Any]]:
    """Live nodes: a short name, their CPUs and the CPUs free now."""
    found = []
    try:
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(ray.get_runtime_context().gcs_address)
        for node in status.active_nodes + status.idle_nodes:
            usage = {entry.resource_name: entry for entry in (node.resource_usage.usage if node.resource_usage else [])}
            cpu = usage.get("CPU")
            total = float(cpu.total) if cpu else 0.0
            found.append({"name": f"node {str(node.node_id)[:8]}", "cpus": total, "free": total - (float(cpu.used) if cpu else 0.0)})
        return found
    except Exception:  # noqa: BLE001 (an older Ray: its public totals instead)
        total = float(ray.cluster_resources().get("CPU", 0.0))
        return [{"name": "all nodes", "cpus": total, "free": float(ray.available_resources().get("CPU", 0.0))}]


def _actor_states(ray: Any) -> dict[str, list[str]]:
    """This job's unit actors by state (``ALIVE``, ``PENDING_CREATION``, ``RESTARTING``, …) → their nodes."""
    try:
        from ray._private import state

        job = ray.get_runtime_context().get_job_id()
        table = state.actors()
    except Exception:  # noqa: BLE001 (no actor table from this Ray: the line says less)
        return {}
    found: dict[str, list[str]] = {}
    for actor in table.values():
        if ACTOR_CLASS not in str(actor.get("ActorClassName", "")) or str(actor.get("JobID", job)) != str(job):
            continue
        node = str((actor.get("Address") or {}).get("NodeID") or "")[:8]
        found.setdefault(str(actor.get("State", "UNKNOWN")), []).append(node)
    return found


def _demands(ray: Any) -> str:
    """The task and actor resource shapes the cluster has queued and cannot place, as Ray reports them."""
    try:
        from ray.autoscaler.v2.sdk import get_cluster_status

        demand = get_cluster_status(ray.get_runtime_context().gcs_address).resource_demands
    except Exception:  # noqa: BLE001
        return ""
    shown = []
    for group in demand.ray_task_actor_demand:
        for request in group.bundles_by_count:
            bundle = ", ".join(f"{name} {value:g}" for name, value in sorted(request.bundle.items()))
            shown.append(f"{request.count} × {{{bundle}}}")
    return ", ".join(shown)
