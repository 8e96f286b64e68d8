"""Importing this module registers rewardsmith's advantage estimators in verl (``rewardsmith_grpo``, ...,
and ``rewardsmith_spec``, the spec's shaping over whole groups)
and DRPO (policy loss ``drpo`` with its label estimator ``drpo_labels``; see :mod:`rewardsmith.integrations.verl_drpo`).

verl imports the modules named in ``VERL_USE_EXTERNAL_MODULES`` (and the ``verl.plugins`` entry
points) in every one of its processes, which is where the advantage lookup happens::

    VERL_USE_EXTERNAL_MODULES=rewardsmith.integrations.verl_plugin python -m verl.trainer.main_ppo \\
        algorithm.adv_estimator=rewardsmith_rloo ...
"""

from rewardsmith.integrations.verl import register_advantages
from rewardsmith.integrations.verl_drpo import register_drpo

REGISTERED = register_advantages()
DRPO_LOSS = register_drpo()  # policy_loss.loss_mode=drpo with algorithm.adv_estimator=drpo_labels
