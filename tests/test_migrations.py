"""The migrations build the schema the models describe, on SQLite and PostgreSQL: tables,
columns and their types, indexes, unique and foreign keys. Not compared: CHECK constraints
(Alembic leaves them out) and server defaults (columns added to tables with rows keep the
default their migration filled them with; the models set values in Python)."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.extensions import db


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, db.metadata) == []
