"""Each learned method's training budget at the ``default`` profile, planned from its
resolved profile (nothing is trained); :mod:`xhbench.methods.budget_rule` checks them."""

from __future__ import annotations

from ..methods.budget_rule import DefaultBudget
from ..plugins import get_plugins
from .config import resolve

__all__ = ["default_budgets"]


def default_budgets(task: str) -> list[DefaultBudget]:
    """The default budget of every learned method (one that plans training steps) that
    supports ``task``, by name."""
    registry = get_plugins().registry
    budgets = []
    for entry in registry.entries("method"):
        if task not in registry.tasks_supported_by(entry):
            continue
        cls = entry.load()
        config = resolve(f"method {entry.name}", cls.Config, cls.profiles, "default")
        budget = DefaultBudget.planned(entry.name, cls, config)
        if budget.stages:
            budgets.append(budget)
    return sorted(budgets, key=lambda budget: budget.method)
