"""A file written whole or not at all: the document goes to a temporary file in the target's
directory (so the rename cannot cross file systems), renamed over the target once it is complete.
An error or an interrupt (``KeyboardInterrupt`` too) removes the temporary and leaves the target
as it was."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Optional, Type, Union

PathArg = Union[str, "os.PathLike[str]"]


class AtomicFile:
    """``with AtomicFile(path) as out: out.write(...)``; ``out.commit()`` at the end renames the
    temporary to ``path``. Leaving the block without committing removes the temporary."""

    def __init__(self, target: PathArg) -> None:
        self.target = Path(target)
        if self.target.is_dir():
            raise IsADirectoryError(f"{self.target} is a directory: give the path of the file to write")
        for _ in range(16):
            temporary = self.target.parent / f".{self.target.name}.{secrets.token_hex(6)}.tmp"
            try:
                # Created like any new file (mode 0o666 less the umask), where mkstemp's are 0o600:
                # the report is renamed, not copied, so its mode is the temporary's.
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"no free temporary name beside {self.target}")
        self.temporary = temporary
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._committed = False

    def write(self, block: bytes) -> None:
        self._file.write(block)

    def commit(self) -> Path:
        self._file.close()
        os.replace(self.temporary, self.target)
        self._committed = True
        return self.target

    def discard(self) -> None:
        if self._committed:
            return
        self._file.close()
        try:
            os.unlink(self.temporary)
        except FileNotFoundError:
            pass

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        self.discard()
