"""The region settings the workspace reads: a read-only view of what matching declares, so that the caseload
page calls a candidate out of sight exactly when matching's sweep would. The workspace declares no setting of
its own, so ``werkbrug tenants set`` keeps changing these through matching."""

from __future__ import annotations

from dataclasses import dataclass

from shared.tenant_settings import TenantSettings


@dataclass(frozen=True)
class RegionView(TenantSettings):
    # Matching's default, for a region that never set it.
    contact_days: int = 30
