"""Training objectives that need the policy's log-probabilities (torch; used by the trainer adapters)."""
