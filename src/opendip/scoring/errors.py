"""Errors of scoring and settlement: each says what is wrong and where, in Chinese."""

from __future__ import annotations


class ScoringError(ValueError):
    """Scoring cannot proceed; the message names the file, row, field or parameter."""


class MissingParameterError(ScoringError):
    """A policy parameter that money depends on is missing: we refuse rather than guess."""

    def __init__(self, parameter: str, why: str) -> None:
        self.parameter = parameter
        super().__init__(f"缺少政策参数 {parameter}：{why}。未计算金额，请在政策文件中补充。")


class InputDataError(ScoringError):
    """Input tables that do not fit together (unknown hospital, missing level, ...)."""

    def __init__(self, table: str, field: str, message: str, examples: list[str] = ()) -> None:
        self.table = table
        self.field = field
        self.examples = list(examples)
        sample = f"（例如：{'、'.join(self.examples[:5])}）" if self.examples else ""
        super().__init__(f"{table} 表字段 {field}：{message}{sample}")


class ReviewFileError(ScoringError):
    """The special-review (特例单议) table is malformed or names unknown cases."""
