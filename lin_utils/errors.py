"""Exceptions that the CLI turns into a one-line message and exit code 2."""


class LinUtilsError(Exception):
    """Base class for user-facing errors (bad input, missing data or model)."""


class DataNotFoundError(LinUtilsError, FileNotFoundError):
    """A dataset was found neither in the local mirror nor on the Hugging Face hub."""


class ModelNotFoundError(LinUtilsError, OSError):
    """A model spec resolved to nothing loadable."""


def one_line(message, limit: int | None = 200) -> str:
    """The first non-empty line of a message (or exception), whitespace collapsed, cut to
    ``limit`` characters with "…" (no cut when ``limit`` is None). An exception without a message
    gives its type name."""
    lines = [" ".join(ln.split()) for ln in str(message).splitlines() if ln.strip()]
    text = lines[0] if lines else (type(message).__name__ if isinstance(message, BaseException) else "")
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a long command installed a handler for it, so that it cleans up as
    after Ctrl-C; the CLI exits 143."""
