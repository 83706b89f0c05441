"""The one exception for mistakes the user can fix, as opposed to bugs in diffbench; and
reading a user's text file, whose failures are such mistakes."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input: a config, an argument or a run directory that cannot be used as given.

    The message alone says what is wrong and where; the command line prints it without a
    traceback and exits with status 2.  Any other exception outside a case is a bug.
    """


def read_utf8(path: Path, error: type[UserError], what: str) -> str:
    """The text of ``path``; raises ``error`` naming the file where it cannot be read, or the
    line and column of its first byte that is not UTF-8 (``what`` says what the file is)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(f"{path}: line {line}, column {column}: not UTF-8 text (byte "
                    f"0x{data[exc.start]:02x}); a {what} is UTF-8 text") from None
