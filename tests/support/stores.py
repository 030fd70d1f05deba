"""A key-value store in a dict, standing in for the Airflow Variables the in-flight records and claims use."""

from __future__ import annotations


class DictStore:
    name = "dict"

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def read(self, key: str) -> str | None:
        return self.values.get(key)

    def write(self, key: str, value: str) -> None:
        self.values[key] = value

    def delete(self, key: str) -> None:
        self.values.pop(key, None)
