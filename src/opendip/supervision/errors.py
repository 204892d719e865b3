"""Errors of the supervision module (messages in Chinese, naming the table and column)."""

from __future__ import annotations


class SupervisionError(ValueError):
    """Base class: supervision could not run on the given inputs."""


class SupervisionInputError(SupervisionError):
    """An input table lacks a column or has a wrong type."""

    def __init__(self, table: str, message: str) -> None:
        self.table = table
        super().__init__(f"{table}：{message}")
