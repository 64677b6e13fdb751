"""Node.js clients against our server; ``node_project`` comes from tests/conftest.py (tests/compat/harness.py)."""
