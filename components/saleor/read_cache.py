"""A short-lived, per-process snapshot of each app read (the app and its webhooks, from one query).

The engine calls Read once per resource, concurrently, during a refresh. The app and each of its webhooks
share one snapshot, so a no-op refresh costs one login and one query per app instead of one per resource.
Any mutation for an app drops its snapshot. The cache holds read results only: no client, no token, and it
lives in the provider host process (module globals of an importable module are never pickled into state).
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

Key = tuple[str, str]  # (api_url, app_id)


class AppSnapshots:
    """Single-flight TTL cache: concurrent readers of one app wait for one fetch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Key, tuple[float, Any]] = {}
        self._key_locks: dict[Key, threading.Lock] = {}

    def get(self, key: Key, ttl_seconds: float, fetch: Callable[[], Any]) -> Any:
        if ttl_seconds <= 0:
            return fetch()
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                entry = self._entries.get(key)
            if entry is not None and entry[0] > time.monotonic():
                return copy.deepcopy(entry[1])
            value = fetch()
            with self._lock:
                self._entries[key] = (time.monotonic() + ttl_seconds, value)
            return copy.deepcopy(value)

    def invalidate(self, key: Key) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


SNAPSHOTS = AppSnapshots()
