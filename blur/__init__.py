"""Irreversibly destroy faces in photos and re-encode them without any metadata.

In memory::

    from blur import anonymise_image
    result = anonymise_image(rgb_uint8_array)      # result.pixels, result.regions

On files::

    from blur import anonymise_file
    anonymise_file("in.jpg", "out.jpg")             # raises a BlurError, writes nothing, on failure
"""

from .anonymise import Method
from .errors import BlurError
from .pipeline import Anonymised, FileResult, Settings, anonymise_file, anonymise_image, find_regions
from .regions import Region, Shape

__version__ = "0.1.0"

__all__ = [
    "Anonymised",
    "BlurError",
    "FileResult",
    "Method",
    "Region",
    "Settings",
    "Shape",
    "anonymise_file",
    "anonymise_image",
    "find_regions",
]
