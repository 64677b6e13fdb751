"""The ``roomquake`` command line; each verb lives in its own module."""
