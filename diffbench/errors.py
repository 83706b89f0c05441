"""The one exception for mistakes the user can fix, as opposed to bugs in diffbench."""

from __future__ import annotations


class UserError(Exception):
    """Bad input: a config, an argument or a run directory that cannot be used as given.

    The message alone says what is wrong and where; the command line prints it without a
    traceback and exits with status 2.  Any other exception outside a case is a bug.
    """
