"""SQLAlchemy models, engine and Alembic migrations."""
