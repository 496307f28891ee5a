"""Per-page state the event handlers share: is a turn running, and how to stop it.

Stop used to cancel the streaming event from Gradio's side, racing the generator's last update:
the thought could stay "Thinking…" forever. Now Stop only raises a `StopSignal`; the signal
closes the open HTTP stream, and the generator itself renders the stopped state and ends, so
its last update is always the final one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


class StopSignal:
    """Set once by Stop; closes every stream attached to it, now or when attached later."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._closers: list[Callable[[], None]] = []

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def stop(self) -> None:
        with self._lock:
            self._event.set()
            closers, self._closers = self._closers, []
        for close in closers:
            _quietly(close)

    def attach(self, close: Callable[[], None]) -> None:
        with self._lock:
            if not self._event.is_set():
                self._closers.append(close)
                return
        _quietly(close)

    def detach(self, close: Callable[[], None]) -> None:
        with self._lock:
            if close in self._closers:
                self._closers.remove(close)


def _quietly(close: Callable[[], None]) -> None:
    try:
        close()
    except Exception:  # noqa: BLE001 - a stream that is already broken is stopped enough
        pass


@dataclass
class PageState:
    """One per page load (Gradio's session hash)."""

    signal: StopSignal = field(default_factory=StopSignal)
    busy: bool = False  # a turn (chat or compare) is being answered
    chat_id: int = 0  # bumped by New chat: a stream of an older chat must not write into it


class Sessions:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pages: dict[str, PageState] = {}

    def get(self, session: str | None) -> PageState:
        with self._lock:
            return self._pages.setdefault(session or "", PageState())

    def begin(self, session: str | None) -> StopSignal | None:
        """Mark a turn as started; None if one is running already (one at a time per page).

        A stopped turn no longer counts: it is only rendering its end, and a send right after
        Stop must not be refused as busy."""
        page = self.get(session)
        with self._lock:
            if page.busy and not page.signal.stopped:
                return None
            page.busy, page.signal = True, StopSignal()
            return page.signal

    def end(self, session: str | None, signal: StopSignal) -> None:
        """End the turn of `signal`; a later turn that started meanwhile stays busy."""
        page = self.get(session)
        with self._lock:
            if page.signal is signal:
                page.busy = False

    def stop(self, session: str | None) -> None:
        self.get(session).signal.stop()

    def new_chat(self, session: str | None) -> None:
        page = self.get(session)
        page.chat_id += 1
        page.signal.stop()
