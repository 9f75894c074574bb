from services.workspace.store import metadata
from shared.db import run_migrations

run_migrations(metadata)
