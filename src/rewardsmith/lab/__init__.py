"""The overthinking lab: train a small verbose policy, run GRPO under several reward specs and
report the accuracy/length trade-off each one buys (``rewardsmith lab``).

Modules: :mod:`~rewardsmith.lab.tasks` (problems and traces), :mod:`~rewardsmith.lab.model` and
:mod:`~rewardsmith.lab.sft` (the base policy), :mod:`~rewardsmith.lab.train` (GRPO through TRL),
:mod:`~rewardsmith.lab.evaluate` (held-out metrics), :mod:`~rewardsmith.lab.run` (the comparison per
seed, resumable), :mod:`~rewardsmith.lab.study` (the aggregate over seeds and the study's analyses),
:mod:`~rewardsmith.lab.intervals` (interval arithmetic), :mod:`~rewardsmith.lab.report` and
:mod:`~rewardsmith.lab.plots` (files and plots), :mod:`~rewardsmith.lab.cli`.
Importing this package imports neither torch nor transformers.
"""
