"""The overthinking lab: train a small verbose policy, run GRPO under several reward specs and
report the accuracy/length trade-off each one buys (``rewardsmith lab``).

Modules: :mod:`~rewardsmith.lab.tasks` (problems and traces), :mod:`~rewardsmith.lab.model` and
:mod:`~rewardsmith.lab.sft` (the base policy), :mod:`~rewardsmith.lab.train` (GRPO through TRL),
:mod:`~rewardsmith.lab.evaluate` (held-out metrics), :mod:`~rewardsmith.lab.report` (files and
plots), :mod:`~rewardsmith.lab.run` (the whole comparison), :mod:`~rewardsmith.lab.cli`.
Importing this package imports neither torch nor transformers.
"""
