"""Mutation testing (mutmut) on the modules where a wrong operator costs money or leaks data.

    make mutation                      # every group below, one after the other
    make mutation GROUPS="money qc"    # some groups
    python scripts/mutation.py --list  # the groups, their modules and test subsets

Each group mutates only its modules and runs only its targeted tests (mutmut runs, for each
mutant, the tests of that subset that executed the mutated function). A group is built in
.mutation/<group>/ (a copy of src, tests, policies, docs and pyproject.toml with the group's
[tool.mutmut] section), so groups never share state and the work tree is untouched.
Results: .mutation/<group>/mutants/mutmut-cicd-stats.json and `survivors.txt`; the figures
and the explanation of every survivor are in docs/testing.md. Not part of `make test`.
"""

from __future__ import annotations

import argparse
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

#: group → (modules to mutate, pytest arguments selecting its tests)
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "money": (["src/opendip/money.py"], ["tests/money"]),
    "access": (
        ["src/opendip/store/access.py"],
        ["tests/store/test_access_rules.py", "-m", "not postgres"],
    ),
    "scoring": (
        [
            "src/opendip/scoring/formulas.py",
            "src/opendip/scoring/rules.py",
            "src/opendip/scoring/exact.py",
            "src/opendip/scoring/single.py",
            "src/opendip/scoring/batch.py",
        ],
        [
            "tests/cases/test_worked_examples.py",
            "tests/scoring/test_oracle.py",
            "tests/scoring/test_formulas.py",
        ],
    ),
    "settlement": (
        ["src/opendip/settlement/pointvalue.py", "src/opendip/settlement/clearing.py"],
        ["tests/settlement/test_pointvalue.py", "tests/settlement/test_clearing.py"],
    ),
    "qc": (
        ["src/opendip/qc/batch.py", "src/opendip/qc/single.py", "src/opendip/qc/context.py"],
        ["tests/qc/test_limits.py", "tests/qc/test_default_rules.py"],
    ),
    "grouping": (
        ["src/opendip/grouping/single.py", "src/opendip/grouping/batch.py"],
        ["tests/grouping/test_grouping.py"],
    ),
    "security": (
        ["src/opendip/web/security.py"],
        ["tests/web/test_auth.py", "tests/web/test_access.py", "-m", "not postgres"],
    ),
}


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def build(group: str) -> Path:
    modules, tests = GROUPS[group]
    where = BUILD / group
    if where.exists():
        shutil.rmtree(where)
    where.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in COPY:
        shutil.copytree(ROOT / name, where / name, ignore=ignore)
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
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


def run(group: str, children: int) -> dict:
    where = build(group)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HYPOTHESIS_PROFILE"] = "mutation"
    mutmut = [sys.executable, "-m", "mutmut"]
    start = time.monotonic()
    with open(where / "mutmut.log", "w", encoding="utf-8") as log:
        subprocess.run(
            [*mutmut, "run", "--max-children", str(children)],
            cwd=where, env=env, stdout=log, stderr=subprocess.STDOUT, check=False,
        )  # fmt: skip
        subprocess.run([*mutmut, "export-cicd-stats"], cwd=where, env=env, stdout=log, check=False)
        survivors = subprocess.run(
            [*mutmut, "results"], cwd=where, env=env, capture_output=True, text=True, check=False
        ).stdout
    (where / "survivors.txt").write_text(survivors, encoding="utf-8")
    stats_file = where / "mutants" / "mutmut-cicd-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    stats["group"] = group
    stats["seconds"] = round(time.monotonic() - start)
    return stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", help="groups to run (default: all)")
    parser.add_argument("--list", action="store_true", help="show the groups and exit")
    parser.add_argument("--children", type=int, default=2, help="parallel mutants (default 2)")
    args = parser.parse_args()
    if args.list:
        for name, (modules, tests) in GROUPS.items():
            print(f"{name}: {' '.join(modules)}\n    tests: {' '.join(tests)}")
        return 0
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group(s): {', '.join(unknown)}")
    rows = [run(g, args.children) for g in (args.groups or list(GROUPS))]
    keys = ["group", "total", "killed", "survived", "no_tests", "timeout", "suspicious", "seconds"]
    print("\t".join(keys))
    for row in rows:
        print("\t".join(str(row.get(k, "")) for k in keys))
    (BUILD / "summary.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
