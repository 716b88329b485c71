"""Real servers started on this machine for `make dev` and the tests: Postgres, Temporal, anvil.

Each one is skipped when its URL setting points at an external service.
"""
