"""roomquake: chaos engineering for live audio-room services."""

__version__ = "0.1.0"
