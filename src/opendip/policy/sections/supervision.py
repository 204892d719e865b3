"""Supervision (智能监管) parameters: reference §6 (docs/supervision.md explains each)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field

from opendip.policy.sections.base import Positive, Section, Share


class SupervisionPolicy(Section):
    # --- split admission / readmission (分解住院、二次入院) ---
    readmission_window_days: int = Field(default=15, ge=1)
    readmission_scope: Literal["same_hospital", "any_hospital"] = "any_hospital"
    #: Planned cycles (chemotherapy, radiotherapy) not counted as readmissions: a stay whose
    #: main diagnosis starts with one of these is left out of readmission pairs.
    readmission_exclude_prefixes: list[str] = ["Z51"]
    #: A stay ended by a transfer order (离院方式 2 医嘱转院) followed by an admission at
    #: another hospital is a transfer, not a readmission.
    readmission_exclude_transfers: bool = True

    # --- low-standard admission (低标准入院) ---
    low_standard_max_los_days: int = Field(default=2, ge=1)
    low_standard_max_cost_ratio: Share = Decimal("0.3")
    #: Conditions usually treated as outpatients (main-diagnosis prefixes); empty = any.
    low_standard_condition_prefixes: list[str] = []
    #: Only stays without any procedure (a 1-day stay with a procedure is often day surgery).
    low_standard_conservative_only: bool = True
    #: Discharge methods never flagged: 2 医嘱转院, 3 医嘱转社区, 5 死亡.
    low_standard_exclude_discharge_methods: list[str] = ["2", "3", "5"]

    # --- overlong stays (超长住院) and high-multiple clusters ---
    overlong_stay_days: int = Field(default=60, ge=1)
    #: Main-diagnosis prefixes never flagged as overlong (e.g. bed-day paid psychiatry).
    overlong_exclude_prefixes: list[str] = []
    #: A doctor or department is a high-multiple cluster when it has at least this many
    #: high-multiple cases ...
    cluster_min_cases: int = Field(default=5, ge=1)
    #: ... and its high-multiple share is at least this multiple of its peers' share.
    cluster_share_ratio_alert: Positive = Decimal("2")

    # --- cost shifting (费用转嫁) ---
    #: Out-of-list (目录外) share of total cost that is flagged on its own.
    out_of_list_share_alert: Share = Decimal("0.15")
    #: Rise of the self-paid or out-of-list share vs the hospital's own history (share points).
    cost_shift_rise_alert: Share = Decimal("0.05")
    #: Self-paid or out-of-list share at least this multiple of same-level peers.
    cost_shift_peer_ratio_alert: Positive = Decimal("2")

    # --- upcoding (高套分值) ---
    #: A hospital's share of a family's costliest subcategory (or its comorbidity count) at
    #: least this multiple of its own history or of its same-level peers.
    upcoding_shift_alert: Positive = Decimal("2")
    #: Comorbidity count (auxiliary-directory comorbidities) at least this multiple of peers.
    upcoding_comorbidity_ratio_alert: Positive = Decimal("1.5")
    #: Statistical strength required (binomial / normal z-score) on top of the ratios.
    upcoding_z_alert: Positive = Decimal("4")
    #: Hospital × diagnosis family needs this many current cases to be judged.
    upcoding_min_cases: int = Field(default=20, ge=1)
    #: A case's surgery + treatment + materials fees below this share of the regional median
    #: for the same procedures = procedure billed without matching cost.
    upcoding_procedure_cost_ratio: Share = Decimal("0.2")

    # --- shared ---
    #: History used: the months before the period under review (own-history comparisons,
    #: readmissions across the period start, year-on-year indicators).
    history_months: int = Field(default=12, ge=1)
    #: Cases needed for a typical value (median cost / LOS) or a peer reference.
    min_peer_cases: int = Field(default=20, ge=1)
    #: Cases listed in one hospital-level lead (most unusual first).
    lead_max_cases: int = Field(default=50, ge=1)
    top_leads: int = Field(default=100, ge=1)

    # --- indicators: anomaly flags ---
    #: |robust z| (median / MAD) at or above which a monthly indicator is flagged.
    anomaly_z_alert: Positive = Decimal("3.5")
    #: Previous months a hospital's own trend is taken from, and the minimum needed.
    anomaly_history_months: int = Field(default=12, ge=2)
    anomaly_min_history_months: int = Field(default=6, ge=2)
    #: Minimum cases in a hospital-month for its indicators to be judged.
    anomaly_min_cases: int = Field(default=30, ge=1)
    #: The spread a z-score divides by is at least this share of the median, so that a
    #: near-constant series (or a few near-identical peers) does not flag small moves.
    anomaly_min_relative_spread: Share = Decimal("0.05")
    #: Minimum same-level hospitals (each with `anomaly_min_cases`) for a peer comparison.
    anomaly_min_peers: int = Field(default=5, ge=2)
