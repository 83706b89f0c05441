"""diffbench: ways of computing derivatives, measured side by side on the same functions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("diffbench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
