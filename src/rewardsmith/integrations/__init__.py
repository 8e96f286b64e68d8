"""Framework adapters: TRL (``trl``), verl (``verl``), the OpenRLHF-compatible HTTP server and Ray.

Each module imports its framework lazily; importing ``rewardsmith.integrations`` costs nothing.
"""
