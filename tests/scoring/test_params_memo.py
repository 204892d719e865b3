"""scoring_params is remembered per policy object (the single-case API converts each policy
version's parameters once, issue 16 §4) and never mixes two policies."""

from __future__ import annotations

from decimal import Decimal

from opendip.policy import demo_policy_path, load_policy
from opendip.scoring.params import scoring_params


def test_same_policy_object_gives_the_same_parameters() -> None:
    policy = load_policy(demo_policy_path())
    assert scoring_params(policy) is scoring_params(policy)
    assert scoring_params(policy, 800_000) is not scoring_params(policy)
    assert scoring_params(policy, 800_000).all_case_mean_fen == 800_000


def test_a_changed_policy_gets_its_own_parameters() -> None:
    policy = load_policy(demo_policy_path())
    before = scoring_params(policy)
    levels = dict(policy.scoring.hospital_coefficient.levels)
    level = sorted(levels)[0]
    levels[level] = Decimal("1.2345")
    coefficient = policy.scoring.hospital_coefficient.model_copy(update={"levels": levels})
    changed = policy.model_copy(
        update={"scoring": policy.scoring.model_copy(update={"hospital_coefficient": coefficient})}
    )
    after = scoring_params(changed)
    assert after.level_coef4[level] == 12345
    assert scoring_params(policy) is before and before.level_coef4[level] != 12345
