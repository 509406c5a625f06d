"""Containers: one walker per photo format, reading what a file carries besides its pixels.

Each walker reads the file's own structure (JPEG segments, PNG chunks, RIFF chunks, TIFF
directories, GIF blocks, HEIF boxes, BMP headers) instead of asking a decoder what it understood:
a decoder silently skips what it does not know, and what it skips is exactly what leaks. Each
returns a `Finding` for everything that is not on its format's short allow-list of basics, in
file order. `blur.formats` names the walker of each format.
"""
