"""Tasks: evaluation protocols of the paper."""

from .base import EvalItem, Setting, Task, TaskSpec

__all__ = ["EvalItem", "Setting", "Task", "TaskSpec"]
