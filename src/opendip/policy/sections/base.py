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


#: Marker a validator puts before its message to name the key (relative to the model being
#: validated) the problem is about; `opendip.policy.load` appends it to the error's path.
KEY_MARK = "@key:"


def key_error(key: str, zh: str, en: str) -> ValueError:
    """A validation error about `key` (e.g. "share", "budget.employee.reimbursement_ratio"),
    reported at the model's path + key, in Chinese and English."""
    return ValueError(f"{KEY_MARK}{key}@ {zh} / {en}")


def explicit(model: BaseModel, key: str) -> bool:
    """True when the policy file wrote `key` (not a default)."""
    return key in model.model_fields_set
