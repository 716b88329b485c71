"""Temporal activities: Postgres writes, chain reads, signing and operator transactions."""
