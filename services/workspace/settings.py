"""The workspace declares no per-tenant setting of its own. What it shows of a region's settings comes
from the service that owns them, through its API: the caseload's "out of sight" uses the ``contact_days``
in matching's ``GET /caseload`` answer, so the page and matching's sweep never disagree and the default
lives in matching's settings only."""
