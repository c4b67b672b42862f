"""Training: the one engine every method trains in, its batches, state and history.

- :mod:`~xhbench.training.engine`: :class:`Engine` runs a method's :class:`Stage`\\ s.
- :mod:`~xhbench.training.batches`: :class:`StepBatches`, batch ``step`` a pure function
  of seed and step.
- :mod:`~xhbench.training.state`: :class:`TrainingState`, the resumable state.
- :mod:`~xhbench.training.history`: ``history.csv``, one row per step.
- :mod:`~xhbench.training.parallel`: data parallelism inside the loop.
- :mod:`~xhbench.training.budget`: the steps and samples a training cost.

The package imports nothing itself (``budget`` needs no torch): import the modules.
"""
