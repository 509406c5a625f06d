"""Stop: how a caller asks long work (a batch, a hot folder, a video) to end at its next safe point."""

from __future__ import annotations

from typing import Protocol


class StopRequest(Protocol):
    """A `threading.Event`, or any flag with its two methods. The command line's is set by signal
    handlers, which must never wait for a lock (see blur_cli.options.SignalStop)."""

    def is_set(self) -> bool:
        """Whether a stop was asked for: work checks this between photos, or between frames of a video."""
        ...

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a stop (a hot folder between scans); whether it was asked for."""
        ...
