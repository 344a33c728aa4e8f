"""Errors of the index; every message names the index, the reason and what to do."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the index errors."""


class IndexMissingError(StoreError):
    """No index at that path yet."""


class IndexLockedError(StoreError):
    """Another writer holds the index."""


class IndexMismatchError(StoreError):
    """The index was built with other settings, another encoder or an older format."""


class IndexCorruptError(StoreError):
    """Files of the index are missing or damaged: a rebuild is the way out."""
