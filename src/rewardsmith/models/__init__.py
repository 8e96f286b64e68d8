"""Model-backed scoring: clients for model servers (OpenAI-compatible chat for judges).

A layer below the verifiers: it imports nothing else from rewardsmith. Nothing here imports an
HTTP library at module level; the client imports ``httpx`` when it
first sends a request (the ``judge`` extra).
"""
