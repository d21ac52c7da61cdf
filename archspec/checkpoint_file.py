"""Opening a file torch.save wrote, before torch.load reads it: a regular file (a FIFO
would block the load forever), and, when it is a zip archive, one whose entries cannot
inflate to more than the file holds. Callers say what the file should have been."""
from __future__ import annotations

import os
import zipfile

from .diagnostics import error
from .yaml_source import NotRegularFileError, open_regular_file


def open_checkpoint(path, shown: str, what: str, hint: str | None = None):
    """The open file, or E0106 saying why `path` (shown as `shown`) cannot be read as
    `what` ("a checkpoint", "an archspec build")."""
    try:
        return open_regular_file(path)
    except FileNotFoundError:
        raise error("E0106", f"no such file: {shown}", hint=hint) from None
    except IsADirectoryError:
        raise error("E0106", f"{shown} is a directory, not {what}") from None
    except NotRegularFileError:
        raise error("E0106", f"{shown} is not a regular file") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise error("E0106", f"cannot read {shown}: {getattr(exc, 'strerror', None) or exc}") from None


def zip_archive_problem(f) -> str | None:
    """Why the zip archive in `f` must not be handed to torch.load, or None. torch.save
    writes stored (uncompressed) entries; compressed or overlapping ones could inflate
    to far more than the file holds. Leaves `f` at its start."""
    try:
        with zipfile.ZipFile(f) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return "not a zip archive as torch.save writes"
    finally:
        f.seek(0)
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries) or \
            sum(e.file_size for e in entries) > os.fstat(f.fileno()).st_size:
        return "its entries would expand to more than the file holds (torch.save never compresses them)"
    return None
