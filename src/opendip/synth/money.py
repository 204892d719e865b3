"""Splitting a case's total cost into fee categories and payers, exactly in fen."""

from __future__ import annotations

import numpy as np

from opendip.contract import FEE_NAMES

# Typical fee structure (shares of total) for conservative and surgical stays, in FEE_NAMES order.
_CONSERVATIVE = np.array(
    [0.06, 0.02, 0.10, 0.12, 0.10, 0.0, 0.05, 0.05, 0.38, 0.02, 0.04, 0.02, 0.001, 0.039]
)
_SURGICAL = np.array(
    [0.04, 0.01, 0.07, 0.08, 0.08, 0.18, 0.04, 0.22, 0.20, 0.01, 0.02, 0.01, 0.001, 0.049]
)
_WESTERN = FEE_NAMES.index("fee_western_medicine")


def split_fees(
    total_fen: np.ndarray, surgical: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Fee categories that sum exactly to `total_fen` (remainder to western medicine)."""
    base = np.where(surgical[:, None], _SURGICAL[None, :], _CONSERVATIVE[None, :])
    shares = base * rng.lognormal(0.0, 0.25, size=base.shape)
    shares /= shares.sum(axis=1, keepdims=True)
    amounts = np.floor(shares * total_fen[:, None]).astype(np.int64)
    amounts[:, _WESTERN] += total_fen - amounts.sum(axis=1)
    return {name: amounts[:, i] for i, name in enumerate(FEE_NAMES)}


def split_payment(
    total_fen: np.ndarray,
    employee: np.ndarray,
    rng: np.random.Generator,
    extra_selfpay_share: np.ndarray | float = 0.0,
) -> dict[str, np.ndarray]:
    """fund + serious illness + medical aid + copay + selfpay == total, exactly."""
    n = len(total_fen)
    personal = np.clip(
        np.where(employee, rng.normal(0.20, 0.04, n), rng.normal(0.35, 0.05, n)), 0.05, 0.75
    )
    selfpay_share = np.clip(rng.uniform(0.02, 0.08, n) + extra_selfpay_share, 0, 0.6)
    selfpay = np.floor(total_fen * selfpay_share).astype(np.int64)
    copay = np.maximum(np.floor(total_fen * personal).astype(np.int64) - selfpay, 0)
    serious = np.where(~employee & (total_fen > 5_000_000), total_fen // 10, 0).astype(np.int64)
    aid = np.where(rng.random(n) < 0.03, copay // 20, 0).astype(np.int64)
    copay -= aid
    fund = total_fen - copay - selfpay - serious - aid
    out_of_list = np.floor(selfpay * rng.uniform(0.5, 1.0, n)).astype(np.int64)
    return {
        "fund_paid": fund,
        "serious_illness_paid": serious,
        "medical_aid_paid": aid,
        "personal_copay": copay,
        "personal_selfpay": selfpay,
        "out_of_list_cost": out_of_list,
    }
