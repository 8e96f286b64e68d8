"""A user's package of rewardsmith components, for the tests: importable by the workers, the server and
Ray because ``tests/`` is on their PYTHONPATH (see tests/test_user_components.py)."""
