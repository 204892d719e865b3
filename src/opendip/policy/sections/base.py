"""Shared pieces of policy sections."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Share = Annotated[Decimal, Field(ge=0, le=1)]
Positive = Annotated[Decimal, Field(gt=0)]
NonNegative = Annotated[Decimal, Field(ge=0)]
PoolId = str  # "employee" / "resident": checked against `pools` by the Policy model


class Section(BaseModel):
    """Base for every policy section: unknown keys are errors (typos must not pass)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
