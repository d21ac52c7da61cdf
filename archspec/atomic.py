"""Writing files so that a failure never leaves a half-written file in place of a good one."""
from __future__ import annotations

import os
import signal
import stat
import tempfile
import threading
from contextlib import contextmanager

from .diagnostics import error

# Signals that end the process while it writes; the temporary file is removed first.
# (Ctrl-C raises KeyboardInterrupt, which the cleanup already handles.)
_TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb"):
    """Yield a temporary file beside `path`; rename it over `path` only on success.

    Only a regular file (or nothing) at `path` is replaced: a device, a FIFO or a
    directory is refused. On any failure, Ctrl-C or SIGTERM, the temporary file is
    removed and `path` keeps what it held. A failed write (a full disk, a quota, no
    permission) is raised as E0605 naming the file and the reason."""
    path = os.fspath(path)
    check_output_path(path)
    tmp = out = None
    try:
        with _terminating_signals_raise():
            fd, tmp = tempfile.mkstemp(prefix=".archspec-", suffix=".tmp",
                                       dir=os.path.dirname(os.path.abspath(path)))
            with os.fdopen(fd, mode) as f:
                out = _WriteTracking(f)
                yield out
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _mode_for(path))
            os.replace(tmp, path)
    except _Terminated as exc:
        _remove(tmp)
        signal.raise_signal(exc.signum)  # its own handler is back: by default, the process ends here
        raise error("E0605", f"cannot write {path}: interrupted by {signal.Signals(exc.signum).name}") from None
    except BaseException as exc:
        _remove(tmp)
        failed_write = (out.error if out else None) or (exc if isinstance(exc, OSError) else None)
        if failed_write is not None and isinstance(exc, Exception):  # Ctrl-C stays Ctrl-C
            raise _cannot_write(path, failed_write) from None
        raise


def _mode_for(path: str) -> int:
    """The mode the file keeps (an existing one's), else what a plain `open` would give:
    mkstemp's 0600 would make a page or a checkpoint unreadable to everyone else."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def check_output_path(path: str) -> None:
    """Raise E0605 unless `path` is absent or a regular file: the check atomic_output
    makes first, for callers that want it before the work that produces the file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:  # a symlink loop, a name too long, a NUL byte
        raise _cannot_write(path, exc) from None
    if stat.S_ISDIR(mode):
        raise error("E0605", f"cannot write {path}: it is a directory")
    if not stat.S_ISREG(mode):  # replacing /dev/null or a FIFO with a file would damage it
        raise error("E0605", f"cannot write {path}: it exists and is not a regular file",
                    hint="write to a new path or over a regular file")


def _cannot_write(path: str, exc: Exception):
    return error("E0605", f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}")


def _remove(tmp: str | None) -> None:
    if tmp is not None:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


class _WriteTracking:
    """The temporary file, remembering the first failed write: torch.save reports a
    write that failed deep inside it as a RuntimeError about stream positions."""

    def __init__(self, file):
        self.file, self.error = file, None

    def write(self, data):
        try:
            return self.file.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def __getattr__(self, name):
        return getattr(self.file, name)


class _Terminated(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _terminating_signals_raise():
    """While writing, SIGTERM and SIGHUP raise _Terminated, so the cleanup runs; the
    previous handlers are restored after. Only the main thread can set handlers, and
    a signal the process ignores stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise _Terminated(signum)

    previous = {}
    try:
        for signum in _TERMINATING:
            handler = signal.getsignal(signum)
            if handler is not None and handler != signal.SIG_IGN:  # None: set outside Python
                previous[signum] = signal.signal(signum, raise_terminated)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
