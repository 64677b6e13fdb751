"""pytest plugin (entry point ``pytest11``): experiment files as tests.

Filled in by the pytest-integration work; kept importable meanwhile so that
installing roomquake never breaks an unrelated pytest run.
"""
