"""Videos: every face destroyed in every frame, nothing else of the file kept.

A stage of its own: `decode` (frames upright, within limits) → `track` (faces linked over time, held
for frames around each sighting) → the photo detector and fill → `encode` (fresh H.264 MP4) →
`verify` (an allow-list walk of the MP4's boxes) → the atomic write photos use.
"""

from .decode import VideoLimits
from .pipeline import VideoResult, VideoSettings, anonymise_video_file

__all__ = ["VideoLimits", "VideoResult", "VideoSettings", "anonymise_video_file"]
