"""The campaign model, as the policy reads it: the values live in ``gateway.values.campaign`` (below the config,
which builds them); this module keeps the policy's name for them."""

from __future__ import annotations

from gateway.values.campaign import (
    AUTO_JURISDICTION,
    PACK_COUNTRIES,
    Campaign,
    Category,
    Mode,
    Regime,
    Sector,
    UndatedConsent,
    UndatedRelationship,
    Unsupported,
)

__all__ = [
    "AUTO_JURISDICTION",
    "PACK_COUNTRIES",
    "Campaign",
    "Category",
    "Mode",
    "Regime",
    "Sector",
    "UndatedConsent",
    "UndatedRelationship",
    "Unsupported",
]
