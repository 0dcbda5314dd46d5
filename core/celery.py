"""Celery bound to the Flask app: every task runs inside an app context (Flask's Celery pattern)."""

from __future__ import annotations

import ctypes
import weakref
from typing import Any

from celery import Celery
from celery import Task
from celery.signals import worker_process_init
from flask import Flask

from core import registry


def celery_init_app(app: Flask) -> Celery:
    """Create the Celery app from the Flask config and store it in ``app.extensions``."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.import_name, task_cls=FlaskTask)
    plugged = registry.of(app)
    celery_app.conf.update(celery_settings(app.config), beat_schedule=dict(plugged.beat))
    celery_app.set_default()
    # The task modules each package registered (core.registry.add_tasks), imported now.
    celery_app.autodiscover_tasks(plugged.task_modules, related_name=None, force=True)
    app.extensions["celery"] = celery_app
    _fresh_connections_per_process(app)
    return celery_app


def _fresh_connections_per_process(app: Flask) -> None:
    """Each pool process opens its own database connections.

    The start-up checks open a connection in the parent before it forks its pool; a child
    that reused it would share one socket with its siblings (on PostgreSQL, "unexpected
    result … from command 'BEGIN'" and a batch dying with its claims). ``close=False``
    leaves the parent's connections alone and only forgets them in the child.
    """
    engine_ref = weakref.ref(app.extensions["db"].kw["bind"])

    def forget_inherited(**_: Any) -> None:
        engine = engine_ref()
        if engine is not None:
            engine.dispose(close=False)

    worker_process_init.connect(forget_inherited, weak=False)
    worker_process_init.connect(tune_malloc, weak=False)


# glibc's mallopt parameters (malloc.h).
_M_MMAP_THRESHOLD, _M_ARENA_MAX = -3, -8


def tune_malloc(**_: Any) -> None:
    """Keep a pool process's memory flat over a long send, on glibc.

    Each email is a buffer of 100–200 KB. glibc raises its mmap threshold each time it frees
    such a buffer, after which the buffers come from the heap and fragment it: a pool process
    grew from 118 to 212 MB between 10,000 and 100,000 emails. A fixed threshold returns every
    large buffer to the system when it is freed, and two arenas keep the claim-keeper threads
    from each holding an arena of their own. Elsewhere (musl, macOS) nothing is changed.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 128 * 1024)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        return


def celery_settings(config: Any) -> dict[str, Any]:
    """The Celery settings that make delivery reliable (see ARCHITECTURE.md, "The send path")."""
    transport = {"visibility_timeout": config["VISIBILITY_TIMEOUT"]}
    return {
        "broker_url": config["REDIS_URL"],
        "result_backend": config["REDIS_URL"],
        "broker_transport_options": transport,
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        # A task is acknowledged only when it has finished, and a worker that dies mid-task
        # gives it back to the queue: no batch is lost with the process that held it.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message at a time per process, so a slow batch never holds others hostage.
        "worker_prefetch_multiplier": 1,
        "task_time_limit": config["TASK_TIME_LIMIT"],
        "task_soft_time_limit": soft_time_limit(config),
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_expires": 86_400,
        "worker_hijack_root_logger": False,
    }


def soft_time_limit(config: Any) -> int:
    """Seconds after which a task is asked to stop (SoftTimeLimitExceeded), before the hard
    limit kills it: long work checks its own budget against this."""
    return max(int(config["TASK_TIME_LIMIT"]) - 15, 1)
