"""The miniature audio-room service that roomquake ships as its system under test.

Services (run as ``python -m audioroom.<service>`` with ``docker/`` on
PYTHONPATH): control, edge, supervisor, host, crowd. State lives in Redis.
Configuration comes only from the environment (see ``audioroom.config`` and
docker/audioroom/README.md). Nothing here imports the toolkit (``chaos``).
"""
