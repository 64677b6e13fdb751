"""A Toxiproxy 2.x-compatible fault proxy (server) and the toolkit's client.

Server: ``roomquake proxy serve`` or ``python -m chaos.proxy``; in Python,
``ProxyServer`` (an async context manager). Client: ``chaos.proxy.client``.
"""
