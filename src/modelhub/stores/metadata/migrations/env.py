from __future__ import annotations

from alembic import context

from modelhub.stores.metadata.tables import metadata

engine = context.config.attributes["engine"]
with engine.connect().execution_options(sqlite_write=True) as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
