"""Measuring rewards: what a reward design does to accuracy, length and the policy's behaviour.

One module per concern; importing this package imports none of them (the CLI stays light):

- :mod:`~rewardkit.analysis.scored`: scored rollout files as columns (:class:`ScoredRollouts`).
- :mod:`~rewardkit.analysis.tradeoff`: pass@k, length per difficulty, token reduction, AES,
  accuracy per 1k tokens, Pareto front over runs.
- :mod:`~rewardkit.analysis.audit`: reward-hacking audit with flags (``rewardkit audit``).
- :mod:`~rewardkit.analysis.lc_winrate`: length-controlled win rate (AlpacaEval GLM).
- :mod:`~rewardkit.analysis.wildbench`: WB-Reward with the length margin, WB-Score.
- :mod:`~rewardkit.analysis.ruler`: Ruler's Precise/Flexible Match for target lengths.
- :mod:`~rewardkit.analysis.starc`: STARC distance between tabular reward functions.
- :mod:`~rewardkit.analysis.best_of_n`: best-of-N KL, win rate and selection by a spec.
- :mod:`~rewardkit.analysis.plots`: the PNG plots; :mod:`~rewardkit.analysis.cli`: the commands.
"""
