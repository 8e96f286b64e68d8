"""Importing this module registers rewardsmith's advantage estimators in verl (``rewardsmith_grpo``, ...).

verl imports the modules named in ``VERL_USE_EXTERNAL_MODULES`` (and the ``verl.plugins`` entry
points) in every one of its processes, which is where the advantage lookup happens::

    VERL_USE_EXTERNAL_MODULES=rewardsmith.integrations.verl_plugin python -m verl.trainer.main_ppo \\
        algorithm.adv_estimator=rewardsmith_rloo ...
"""

from rewardsmith.integrations.verl import register_advantages

REGISTERED = register_advantages()
