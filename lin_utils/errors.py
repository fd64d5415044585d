"""Exceptions that the CLI turns into a one-line message and exit code 2."""


class LinUtilsError(Exception):
    """Base class for user-facing errors (bad input, missing data or model)."""


class DataNotFoundError(LinUtilsError, FileNotFoundError):
    """A dataset was found neither in the local mirror nor on the Hugging Face hub."""


class ModelNotFoundError(LinUtilsError, OSError):
    """A model spec resolved to nothing loadable."""
