# The placement tables live in a module of their own; importing it puts them on the metadata below.
import services.matching.placements_store  # noqa: F401
from services.matching.store import metadata
from shared.db import run_migrations

run_migrations(metadata)
