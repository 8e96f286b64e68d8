"""The overthinking lab: train a small verbose policy, run GRPO under several reward specs and
report the accuracy/length trade-off each one buys (``rewardkit lab``).

Modules: :mod:`~rewardkit.lab.tasks` (problems and traces), :mod:`~rewardkit.lab.model` and
:mod:`~rewardkit.lab.sft` (the base policy), :mod:`~rewardkit.lab.train` (GRPO through TRL),
:mod:`~rewardkit.lab.evaluate` (held-out metrics), :mod:`~rewardkit.lab.report` (files and
plots), :mod:`~rewardkit.lab.run` (the whole comparison), :mod:`~rewardkit.lab.cli`.
Importing this package imports neither torch nor transformers.
"""
