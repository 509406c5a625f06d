"""Decode: formats, EXIF orientation, colour, alpha, limits, and refusals."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from blur.decode import decode_photo, read_photo
from blur.errors import ImageTooLarge, UnreadableImage, UnsupportedImage
from conftest import encoded

# How a viewer turns the stored pixels upright for each EXIF orientation (written from the EXIF
# specification, independently of Pillow's own table).
TO_UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: np.rot90(a, k=2).transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}
TO_STORED = {**TO_UPRIGHT, 6: TO_UPRIGHT[8], 8: TO_UPRIGHT[6]}


def upright_image() -> np.ndarray:
    """Asymmetric pixels: any flip or rotation changes them."""
    pixels = np.zeros((12, 20, 3), np.uint8)
    pixels[..., 0] = np.arange(20)[None, :] * 12
    pixels[..., 1] = np.arange(12)[:, None] * 20
    pixels[0, 0] = (255, 255, 255)
    return pixels


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_decodes_to_the_same_upright_pixels(orientation):
    upright = upright_image()
    stored = np.ascontiguousarray(TO_STORED[orientation](upright))
    assert np.array_equal(TO_UPRIGHT[orientation](stored), upright)
    exif = Image.Exif()
    exif[0x0112] = orientation
    photo = decode_photo(encoded(stored, "PNG", exif=exif))
    assert np.array_equal(photo.pixels, upright)


def test_orientation_of_a_jpeg_is_applied():
    upright = np.kron(upright_image(), np.ones((8, 8, 1), np.uint8))  # large flat blocks survive JPEG
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = decode_photo(encoded(np.ascontiguousarray(TO_STORED[6](upright)), "JPEG", exif=exif, quality=95))
    assert photo.pixels.shape == upright.shape
    assert np.abs(photo.pixels.astype(int) - upright).mean() < 4


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "HEIF"])
def test_every_format_decodes(fmt):
    pixels = np.kron(upright_image(), np.ones((4, 4, 1), np.uint8))
    options = {"quality": 95} if fmt in ("JPEG", "WEBP", "HEIF") else {}
    photo = decode_photo(encoded(pixels, fmt, **options))
    assert photo.format == fmt
    assert photo.pixels.shape == pixels.shape and photo.pixels.dtype == np.uint8
    difference = np.abs(photo.pixels.astype(int) - pixels)
    if fmt in ("PNG", "TIFF", "BMP"):
        assert difference.max() == 0
    else:  # lossy or paletted
        assert difference.mean() < 6


def test_srgb_profile_is_applied_and_pixels_kept():
    pixels = upright_image()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    photo = decode_photo(encoded(pixels, "PNG", icc_profile=icc))
    assert np.abs(photo.pixels.astype(int) - pixels).max() <= 2


def test_cmyk_becomes_rgb():
    cyan = Image.new("CMYK", (8, 8), (255, 0, 0, 0))
    buffer = io.BytesIO()
    cyan.save(buffer, "JPEG", quality=100)
    photo = decode_photo(buffer.getvalue())
    red, green, blue = photo.pixels[4, 4].astype(int)
    assert red < 40 and green > 200 and blue > 200


def test_16_bit_grayscale_is_scaled_to_8_bits():
    values = np.array([[0, 256, 32768, 65535]], np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    photo = decode_photo(buffer.getvalue())
    assert photo.pixels[0, :, 0].tolist() == [0, 1, 128, 255]


def test_palette_with_transparency_keeps_alpha():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    image.putpixel((1, 1), 1)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=1)
    photo = decode_photo(buffer.getvalue())
    assert photo.alpha is not None
    assert photo.alpha[1, 1] == 0 and photo.alpha[0, 0] == 255
    assert photo.pixels[0, 0].tolist() == [255, 0, 0]


def test_grayscale_with_alpha_keeps_alpha():
    image = Image.new("LA", (3, 3), (100, 50))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    photo = decode_photo(buffer.getvalue())
    assert photo.pixels[0, 0].tolist() == [100, 100, 100]
    assert photo.alpha[0, 0] == 50


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (8, 8), color) for color in ("red", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "WEBP"])
def test_multi_frame_files_are_refused(fmt):
    with pytest.raises(UnsupportedImage, match="2 frames"):
        decode_photo(_animated(fmt))


def test_images_over_the_pixel_limit_are_refused_before_decoding():
    data = encoded(np.zeros((100, 100, 3), np.uint8), "PNG")
    with pytest.raises(ImageTooLarge, match="megapixels"):
        decode_photo(data, max_pixels=9_999)
    assert decode_photo(data, max_pixels=10_000).pixels.shape == (100, 100, 3)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is a text file, not a photo\n", "not a photo"),
        (encoded(np.zeros((64, 64, 3), np.uint8), "JPEG")[:300], "damaged or truncated"),
    ],
)
def test_unreadable_data_raises_a_clear_error(data, message):
    with pytest.raises(UnreadableImage, match=message):
        decode_photo(data)


def test_read_photo_reports_missing_and_folder(tmp_path):
    with pytest.raises(UnreadableImage, match="cannot read"):
        read_photo(tmp_path / "missing.jpg")
    with pytest.raises(UnreadableImage, match="folder"):
        read_photo(tmp_path)


def xmp_packet(orientation: int, element: bool = False) -> bytes:
    """An XMP packet whose only tag is tiff:Orientation, as an attribute or as an element (both occur)."""
    tag = (f"<tiff:Orientation>{orientation}</tiff:Orientation>" if element else "")
    attribute = "" if element else f' tiff:Orientation="{orientation}"'
    return (f'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            f'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about=""'
            f' xmlns:tiff="http://ns.adobe.com/tiff/1.0/"{attribute}>{tag}</rdf:Description></rdf:RDF>'
            f'</x:xmpmeta><?xpacket end="w"?>').encode()


def with_xmp(pixels: np.ndarray, fmt: str, xmp: bytes, **options) -> bytes:
    """`pixels` encoded as `fmt` with `xmp` in the place each format keeps it."""
    if fmt == "PNG":
        from PIL import PngImagePlugin

        info = PngImagePlugin.PngInfo()
        info.add_itxt("XML:com.adobe.xmp", xmp.decode())
        return encoded(pixels, fmt, pnginfo=info, **options)
    if fmt == "TIFF":
        return encoded(pixels, fmt, tiffinfo={700: xmp}, **options)
    return encoded(pixels, fmt, xmp=xmp, **options)


@pytest.mark.parametrize("element", [False, True])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_an_orientation_only_in_xmp_is_ignored_as_viewers_ignore_it(fmt, element):
    """Browsers and photo viewers turn a photo by its EXIF orientation only; the output must show the
    photo as they showed the original, so an XMP tiff:Orientation alone changes nothing. (HEIF keeps
    its rotation in irot/imir boxes, which libheif applies; pillow-heif writes an XMP orientation there.)"""
    stored = np.kron(upright_image(), np.ones((8, 8, 1), np.uint8))  # large flat blocks survive lossy codecs
    options = {"quality": 95} if fmt in ("JPEG", "WEBP", "HEIF") else {}
    photo = decode_photo(with_xmp(stored, fmt, xmp_packet(6, element), **options))
    assert photo.pixels.shape == stored.shape
    assert np.abs(photo.pixels.astype(int) - stored).mean() < 4


def test_an_exif_block_without_orientation_is_not_completed_from_xmp():
    stored = np.kron(upright_image(), np.ones((8, 8, 1), np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"  # EXIF present, but no orientation tag in it
    photo = decode_photo(encoded(stored, "JPEG", exif=exif, xmp=xmp_packet(6), quality=95))
    assert photo.pixels.shape == stored.shape


@pytest.mark.parametrize("exif_orientation, xmp_orientation", [(6, 1), (6, 8), (1, 6)])
def test_exif_orientation_decides_whatever_xmp_says(exif_orientation, xmp_orientation):
    upright = np.kron(upright_image(), np.ones((8, 8, 1), np.uint8))
    exif = Image.Exif()
    exif[0x0112] = exif_orientation
    stored = np.ascontiguousarray(TO_STORED[exif_orientation](upright))
    photo = decode_photo(encoded(stored, "JPEG", exif=exif, xmp=xmp_packet(xmp_orientation), quality=95))
    assert photo.pixels.shape == upright.shape
    assert np.abs(photo.pixels.astype(int) - upright).mean() < 4


def _tiff_with(tags: dict[int, tuple[int, object]]) -> bytes:
    from PIL import TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    for tag, (kind, value) in tags.items():
        info[tag] = value
        info.tagtype[tag] = kind
    pixels = np.random.default_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8)  # a raw file's tiny preview
    return encoded(pixels, "TIFF", tiffinfo=info)


@pytest.mark.parametrize("tags", [{50706: (1, b"\x01\x04\x00\x00")}, {254: (4, 1)}], ids=["DNG", "preview first"])
def test_camera_raw_files_are_refused_not_reduced_to_their_preview(tags):
    """A DNG (or any TIFF whose first image is a reduced preview) named .tif: by its content."""
    with pytest.raises(UnsupportedImage, match="camera raw|preview"):
        decode_photo(_tiff_with(tags))


def test_an_ordinary_tiff_is_still_read():
    assert decode_photo(_tiff_with({254: (4, 0)})).pixels.shape == (8, 8, 3)
