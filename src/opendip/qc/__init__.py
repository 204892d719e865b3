"""Settlement-list quality control (结算清单质控): rules as data, batch and single case.

rules = load_rule_set("default")                      # or rules_for_policy(policy, path)
result = run_qc(cases, codes_to_ibis(con, code_tables), rules, policy)
findings = check_case(case_dict, code_tables, rules, policy)   # == batch, for one case
"""

from opendip.qc.batch import (
    CASE_STATUS_SCHEMA,
    FINDINGS_SCHEMA,
    QcCodes,
    QcResult,
    codes_to_ibis,
    run_qc,
)
from opendip.qc.rules import (
    LEVEL_LABELS,
    Rule,
    RuleSet,
    RuleSetError,
    load_rule_set,
    rules_for_policy,
)
from opendip.qc.single import CaseChecker, Finding, check_case

__all__ = [
    "CASE_STATUS_SCHEMA",
    "FINDINGS_SCHEMA",
    "LEVEL_LABELS",
    "CaseChecker",
    "Finding",
    "QcCodes",
    "QcResult",
    "Rule",
    "RuleSet",
    "RuleSetError",
    "check_case",
    "codes_to_ibis",
    "load_rule_set",
    "rules_for_policy",
    "run_qc",
]
