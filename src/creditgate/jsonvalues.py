"""Checks on parsed JSON values that every layer shares."""

from __future__ import annotations

from typing import Any


def contains_nul(value: Any) -> bool:
    """Whether any string (key or value) inside a parsed JSON document holds U+0000, which
    PostgreSQL cannot store in text or jsonb. Iterative, so nesting depth is no concern."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
