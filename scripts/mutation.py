"""Mutation testing (mutmut) on the modules where a wrong operator costs money or leaks data.

    make mutation                      # every group below, one after the other
    make mutation GROUPS="money qc"    # some groups
    python scripts/mutation.py --list  # the groups, their modules and test subsets
    python scripts/mutation.py settlement --skip-sample 120  # the rest of a `--sample 120` run

Each group mutates only its modules and runs only its targeted tests (mutmut runs, for each
mutant, the tests of that subset that executed the mutated function). A group is built in
.mutation/<group>/ (a copy of src, tests, policies, docs and pyproject.toml with the group's
[tool.mutmut] section), so groups never share state and the work tree is untouched.
Results: .mutation/<group>/result.json (counts by status) and survivors.txt (every mutant not
killed; `cd .mutation/<group> && python -m mutmut show NAME` prints its diff); the figures and
the explanation of every survivor are in docs/testing.md. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / ".mutation"
COPY = ["src", "tests", "policies", "docs"]

#: group → (modules to mutate, pytest arguments selecting its tests, mutant-name globs).
#: Globs (mutmut names: module.x_function__mutmut_N) limit a group to the functions that
#: decide money or access in a large module; an empty list mutates every function.
GROUPS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "money": (["src/opendip/money.py"], ["tests/money"], []),
    "access": (
        ["src/opendip/store/access.py"],
        ["tests/store/test_access_rules.py", "-m", "not postgres"],
        [],
    ),
    "scoring": (
        [
            "src/opendip/scoring/formulas.py",
            "src/opendip/scoring/exact.py",
            "src/opendip/scoring/rules.py",
            "src/opendip/scoring/single.py",
        ],
        [
            "tests/scoring/test_oracle.py",
            "tests/scoring/test_formulas.py",
            "tests/scoring/test_exact_and_rules.py",
            "tests/cases/test_worked_examples.py",
        ],
        [],
    ),
    "settlement": (
        [
            "src/opendip/settlement/pointvalue.py",
            "src/opendip/settlement/clearing.py",
            "src/opendip/workflow/review_cap.py",
        ],
        [
            "tests/settlement/test_pointvalue.py",
            "tests/settlement/test_review_cap.py",
            "tests/settlement/test_review_cap_edges.py",
            "tests/settlement/test_clearing.py",
            "tests/settlement/test_clearing_edges.py",
            "tests/cases/clearing",
        ],
        [
            "opendip.settlement.pointvalue.*",
            "opendip.workflow.review_cap.*",
            "opendip.settlement.clearing.x__withhold__*",
            "opendip.settlement.clearing.x__compare_sides__*",
            "opendip.settlement.clearing.x__ratio_column__*",
            "opendip.settlement.clearing.x__ffs_band__*",
            "opendip.settlement.clearing.x__allocate__*",
            "opendip.settlement.clearing.x__advances_from_months__*",
        ],
    ),
    "qc": (
        ["src/opendip/qc/single.py", "src/opendip/qc/context.py", "src/opendip/qc/batch.py"],
        [
            "tests/qc/test_limits.py",
            "tests/qc/test_default_rules.py",
            "tests/qc/test_rule_files.py",
            "-k",
            "in_one_batch or tolerance or operators or single_case or all_examples or wrong_kind"
            " or wrong_type or no_amount or same_day_field or per_field or run_date_defaults"
            " or blank_is_missing or money_constant or conditional_finding or unique_with_when"
            " or do_not_print or constant",
        ],
        [
            "opendip.qc.single.xǁCaseCheckerǁ_operand__*",
            "opendip.qc.single.xǁCaseCheckerǁ_compare__*",
            "opendip.qc.single.xǁCaseCheckerǁ_hits__*",
            "opendip.qc.single.xǁCaseCheckerǁ_flag_violated__*",
            "opendip.qc.context.*",
            "opendip.qc.batch.xǁ*ǁoperand__*",
            "opendip.qc.batch.xǁ*ǁcompare__*",
            "opendip.qc.batch.xǁ*ǁ_hits__*",
            "opendip.qc.batch.xǁ*ǁ_scalar_bad__*",
            "opendip.qc.batch.xǁ*ǁ_code_flag__*",
            "opendip.qc.batch.x__any__*",
            "opendip.qc.batch.x__sum__*",
        ],
    ),
    "security": (
        ["src/opendip/web/security.py"],
        [
            "tests/web/test_security_units.py",
            "tests/web/test_auth.py",
            "tests/web/test_access.py",
            "tests/web/test_hardening.py",
            "tests/web/test_pregroup_cache.py",
            "tests/web/test_scoped_roles.py",
            "-m",
            "not postgres",
        ],
        [],
    ),
    "grouping": (
        ["src/opendip/directory/matching.py"],
        [
            "tests/cases/test_grouping_examples.py",
            "tests/grouping/test_grouping.py",
            # best_core / tie_key_expr: the directory build's tie-break (trimming)
            "tests/directory/test_build.py",
        ],
        [
            "opendip.directory.matching.x_tie_key__*",
            "opendip.directory.matching.x_tie_key_expr__*",
            "opendip.directory.matching.x_match_row__*",
            "opendip.directory.matching.x_covers__*",
            "opendip.directory.matching.x_best_core__*",
            "opendip.directory.matching.x_tie_fields__*",
            "opendip.directory.matching.x__split_rules__*",
            "opendip.directory.matching.x_core_choices__*",
            "opendip.directory.matching.x_pick_core__*",
        ],
    ),
    "scoring-batch": (
        ["src/opendip/scoring/batch.py"],
        [
            "tests/cases/test_worked_examples.py",
            "tests/scoring/test_formulas.py",
            "tests/scoring/test_exact_and_rules.py",
            "-k",
            "batch",
        ],
        [
            "opendip.scoring.batch.x__hospital_k4__*",
            "opendip.scoring.batch.x__band_value__*",
            "opendip.scoring.batch.x_with_money__*",
            "opendip.scoring.batch.x_score_period__*",
        ],
    ),
}

STATUSES = ["killed", "survived", "no tests", "timeout", "suspicious", "skipped", "not checked"]


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def build(group: str) -> Path:
    modules, tests, _ = GROUPS[group]
    where = BUILD / group
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPY:
        shutil.copytree(ROOT / name, where / name, ignore=ignore)
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    # mutmut passes test ids back to pytest: the Chinese parametrize ids must stay unescaped
    config = config.replace(
        "[tool.pytest.ini_options]\n",
        "[tool.pytest.ini_options]\n"
        "disable_test_id_escaping_and_forfeit_all_rights_to_community_support = true\n",
    )
    config += f"""
[tool.mutmut]
source_paths = ["src"]
only_mutate = {_toml_list(modules)}
pytest_add_cli_args_test_selection = {_toml_list(tests)}
pytest_add_cli_args = ["-p", "no:cacheprovider"]
also_copy = {_toml_list(COPY[1:])}
use_git_change_detection = false
"""
    (where / "pyproject.toml").write_text(config, encoding="utf-8")
    return where


def _generated(where: Path, mutmut: list[str], env: dict[str, str], log) -> list[str]:
    """Generate the group's mutants (mutmut writes them before it filters names) and list
    their names."""
    subprocess.run(
        [*mutmut, "run", "--max-children", "1", "opendip.no_such_function__mutmut_0"],
        cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
    )  # fmt: skip
    names = []
    for meta in sorted((where / "mutants").rglob("*.py.meta")):
        names += json.loads(meta.read_text(encoding="utf-8")).get("exit_code_by_key", {})
    return sorted(names)


def _sampled(names: list[str], sample: int) -> list[str]:
    """Every k-th name in name order (deterministic, spread over every function)."""
    if len(names) <= sample:
        return names
    step = len(names) / sample
    return [names[int(i * step)] for i in range(sample)]


def run(
    group: str,
    children: int,
    sample: int | None = None,
    only: list[str] | None = None,
    skip_sample: int | None = None,
) -> dict:
    where = build(group)
    globs = GROUPS[group][2]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HYPOTHESIS_PROFILE"] = "mutation"
    mutmut = [sys.executable, "-m", "mutmut"]
    start = time.monotonic()
    with open(where / "mutmut.log", "w", encoding="utf-8") as log:
        names = [
            n
            for n in _generated(where, mutmut, env, log)
            if not globs or any(fnmatch.fnmatch(n, g) for g in globs)
        ]
        in_scope = len(names)
        if only:
            names = [n for n in names if any(fnmatch.fnmatch(n, g) for g in only)]
        chosen = _sampled(names, sample) if sample else names
        if skip_sample:
            # the rest of an earlier `--sample N` run on the same source
            done = set(_sampled(names, skip_sample))
            chosen = [n for n in chosen if n not in done]
        subprocess.run(
            [*mutmut, "run", "--max-children", str(children), *chosen],
            cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
        listing = subprocess.run(
            [*mutmut, "results", "--all", "true"],
            cwd=where, env=env, capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
    wanted = set(chosen)
    results = {}
    for line in listing.splitlines():
        name, _, status = line.strip().rpartition(": ")
        if name in wanted:
            results[name] = status
    survivors = sorted(n for n, st in results.items() if st != "killed")
    (where / "survivors.txt").write_text("\n".join(f"{n}: {results[n]}" for n in survivors))
    row: dict = {"group": group, "generated": in_scope, "mutants": len(results)}
    for status in STATUSES:
        row[status] = sum(1 for st in results.values() if st == status)
    row["seconds"] = round(time.monotonic() - start)
    (where / "result.json").write_text(json.dumps(row, indent=1), encoding="utf-8")
    print("\t".join(f"{k}={v}" for k, v in row.items()), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="groups to run (default: all)")
    parser.add_argument("--list", action="store_true", help="show the groups and exit")
    parser.add_argument("--children", type=int, default=2, help="parallel mutants (default 2)")
    parser.add_argument(
        "--sample", type=int, help="run at most this many mutants per group (every k-th)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="GLOB",
        help="run only the group's mutants matching GLOB (repeatable), e.g. to re-check survivors",
    )
    parser.add_argument(
        "--skip-sample",
        type=int,
        metavar="N",
        help="leave out the mutants `--sample N` runs (to finish an earlier sampled run)",
    )
    args = parser.parse_args()
    if args.list:
        for name, (modules, tests, globs) in GROUPS.items():
            print(f"{name}: {' '.join(modules)}\n    tests: {' '.join(tests)}")
            if globs:
                print(f"    only: {' '.join(globs)}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s): {', '.join(unknown)}")
    rows = [
        run(g, args.children, args.sample, args.only, args.skip_sample)
        for g in (args.groups or list(GROUPS))
    ]
    keys = ["group", "generated", "mutants", *STATUSES, "seconds"]
    print("| " + " | ".join(keys) + " |")
    for row in rows:
        print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
