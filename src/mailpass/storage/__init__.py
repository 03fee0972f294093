"""Storage: the database engine, the tables and their Alembic migrations."""
