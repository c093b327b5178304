"""Stopping a run cleanly: Ctrl-C and SIGTERM become an exception the loop answers by saving a checkpoint.

Inside :func:`interrupts_raise`, SIGTERM (what ``kill`` and job schedulers send) raises
:class:`Interrupted`, like Ctrl-C raises ``KeyboardInterrupt`` (of which it is a subclass), so one
``except KeyboardInterrupt`` in the loop saves the last finished iteration either way. Inside
:func:`deferred`, both signals wait until the block ends: a checkpoint being written is never cut short.
Signal handlers exist only in the main thread; elsewhere both context managers do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop (SIGTERM, or SIGINT received while a checkpoint was being written)."""


def _main_thread():
    return threading.current_thread() is threading.main_thread()


def _raise(signum, frame):
    raise Interrupted(f"stopped by signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def interrupts_raise():
    """SIGTERM raises :class:`Interrupted` inside the block (SIGINT raises KeyboardInterrupt as usual)."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def deferred():
    """SIGINT and SIGTERM received inside the block are held back and raised (as :class:`Interrupted`)
    when it ends, so that what the block writes is complete."""
    if not _main_thread():
        yield
        return
    received = []
    previous = {s: signal.signal(s, lambda signum, frame: received.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}  # fmt: skip
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if received:
        _raise(received[0], None)
