"""Offline image builds for the stack: a base (configured or from Debian) and the services image.

    from chaos.engine import connect
    from chaos.images import ensure_images

    images = ensure_images(connect(), progress=print)
    images.services.ref   # e.g. "roomquake/services:3f2a9c0d1e4b", what containers run

Images are tagged by a hash of their inputs, so an unchanged image is found,
not rebuilt; nothing is pulled unless ROOMQUAKE_PULL=1.
"""

from chaos.images.base import BuiltImage
from chaos.images.config import ImageConfig, config_from_env
from chaos.images.ensure import ImageInfo, ImageSet, ensure_images, list_images

__all__ = ["BuiltImage", "ImageConfig", "ImageInfo", "ImageSet", "config_from_env", "ensure_images", "list_images"]
