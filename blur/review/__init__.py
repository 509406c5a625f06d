"""Review: a local web page where a person checks and corrects every photo before it is exported.

`ReviewSession` holds the queue (regions found, regions the person changed, exports);
`ReviewServer` shows it in the browser, on 127.0.0.1 only, behind a secret token.
"""

from .server import ReviewServer
from .photos import WEAK_SCORE, ReviewError
from .session import VIEW_LONG_SIDE, ReviewSession

__all__ = ["ReviewServer", "ReviewSession", "ReviewError", "VIEW_LONG_SIDE", "WEAK_SCORE"]
