"""Service fixtures: the store fixtures of tests/store, so API tests run on both backends."""

from tests.store.conftest import backend, postgres, store, store_url

__all__ = ["backend", "postgres", "store", "store_url"]
