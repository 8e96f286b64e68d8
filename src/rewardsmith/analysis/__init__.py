"""Measuring rewards: what a reward design does to accuracy, length and the policy's behaviour.

One module per concern; importing this package imports none of them (the CLI stays light):

- :mod:`~rewardsmith.analysis.scored`: scored rollout files as columns (:class:`ScoredRollouts`).
- :mod:`~rewardsmith.analysis.tradeoff`: pass@k, length per difficulty, token reduction, AES,
  accuracy per 1k tokens, Pareto front over runs.
- :mod:`~rewardsmith.analysis.audit`: reward-hacking audit with flags (``rewardsmith audit``).
- :mod:`~rewardsmith.analysis.lc_winrate`: length-controlled win rate (AlpacaEval GLM).
- :mod:`~rewardsmith.analysis.wildbench`: WB-Reward with the length margin, WB-Score.
- :mod:`~rewardsmith.analysis.ruler`: Ruler's Precise/Flexible Match for target lengths.
- :mod:`~rewardsmith.analysis.starc`: STARC distance between tabular reward functions.
- :mod:`~rewardsmith.analysis.best_of_n`: best-of-N KL, win rate and selection by a spec.
- :mod:`~rewardsmith.analysis.plots`: the PNG plots; :mod:`~rewardsmith.analysis.cli`: the commands.
"""
