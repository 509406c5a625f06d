"""Errors a person can act on. Every failure the library expects raises a subclass of BlurError."""


class BlurError(Exception):
    """Base class: the message says what went wrong and what to do about it."""


class InvalidSetting(BlurError, ValueError):
    """A setting is out of range or misspelt: refused rather than used, as it could weaken protection."""


class UnreadableImage(BlurError):
    """The file cannot be read or is not an image we can decode."""


class UnsupportedImage(BlurError):
    """The file is an image, but of a kind we refuse rather than risk a wrong result."""


class ImageTooLarge(BlurError):
    """The image has more pixels than the configured limit."""


class DetectorUnavailable(BlurError):
    """A face detector or its model file is missing."""


class OutputError(BlurError):
    """The anonymised copy cannot be written where asked (exists, same as input, no permission, disk full)."""


class OutputExists(OutputError):
    """The output file is already there (a finished earlier run): it is kept, not replaced."""

    def __init__(self, path):
        super().__init__(f"{path.name} already exists and was kept")
        self.path = path


class VerificationFailed(BlurError):
    """The encoded output did not pass the final checks, so it is not written."""


class UnreadableVideo(BlurError):
    """The video is damaged, truncated, or not a video in a format we read."""


class VideoTooLong(BlurError):
    """The video has more frames, seconds or pixels per frame than the configured limits."""
