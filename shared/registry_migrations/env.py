from shared.db import run_migrations
from shared.registry import metadata

run_migrations(metadata)
