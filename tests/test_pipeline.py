"""The Python API: one image in memory, one file on disk."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from blur import Region, Settings, Shape, anonymise_file, anonymise_image
from blur.anonymise import Method
from blur.errors import InvalidSetting, OutputError, UnreadableImage
from conftest import write_photo


def test_anonymise_image_destroys_the_detected_face(face_pixels):
    result = anonymise_image(face_pixels)
    assert len(result.regions) == 1
    r = result.regions[0]
    assert np.any(result.pixels[r.y0 + 40 : r.y1 - 40, r.x0 + 30 : r.x1 - 30] !=
                  face_pixels[r.y0 + 40 : r.y1 - 40, r.x0 + 30 : r.x1 - 30], axis=2).mean() > 0.9


def test_given_regions_replace_detection(face_pixels):
    result = anonymise_image(face_pixels, Settings(method=Method.SOLID), regions=[Region(0, 0, 10, 10)])
    assert result.regions == [Region(0, 0, 10, 10)]
    assert result.pixels[5, 5].tolist() == [0, 0, 0]
    assert np.array_equal(result.pixels[100:], face_pixels[100:])


def test_a_face_in_a_transparent_area_stays_transparent_with_its_colours_destroyed_underneath(tmp_path, face_pixels):
    """A viewer that shows transparency shows nothing there, as before; one that drops it shows the fill."""
    from benchmarks.wider import box_ssim, grey

    source = tmp_path / "cut-out.png"
    Image.fromarray(np.dstack([face_pixels, np.zeros(face_pixels.shape[:2], np.uint8)]), "RGBA").save(source)
    result = anonymise_file(source, tmp_path / "out.png", Settings(keep_geometry=True))
    with Image.open(result.output) as written:
        assert written.mode == "RGBA"
        alpha, colours = np.asarray(written.getchannel("A")), np.asarray(written.convert("RGB"))
    assert alpha.max() == 0  # no blob where there was nothing
    (face,) = [r for r in result.regions if r.source == "centerface"]
    inner = [face.x0 + face.width // 4, face.y0 + face.height // 4, face.width // 2, face.height // 2]
    assert box_ssim(grey(face_pixels), grey(colours), inner) <= 0.5


def test_alpha_in_a_destroyed_region_keeps_its_level_but_no_outline(face_pixels):
    """Alpha can draw a face (a cut-out's edge, a silhouette): inside a region it becomes one level, the mean."""
    region = Region(20, 20, 60, 60, shape=Shape.RECTANGLE)
    half = np.full(face_pixels.shape[:2], 128, np.uint8)
    assert np.all(anonymise_image(face_pixels, alpha=half, regions=[region]).alpha == 128)
    outline = face_pixels[..., 0].copy()
    result = anonymise_image(face_pixels, alpha=outline, regions=[region])
    assert np.all(result.alpha[20:60, 20:60] == round(outline[20:60, 20:60].mean()))
    assert np.array_equal(result.alpha[60:], outline[60:])


def test_anonymise_image_rejects_other_arrays():
    with pytest.raises(ValueError):
        anonymise_image(np.zeros((10, 10), np.uint8))


def test_the_output_extension_follows_the_real_format(tmp_path, face_pixels):
    source = write_photo(tmp_path / "really-a-png.jpg", face_pixels, "PNG")
    result = anonymise_file(source, tmp_path / "out.jpg")
    assert result.output == tmp_path / "out.png"
    assert result.output.read_bytes().startswith(b"\x89PNG")


def test_the_original_is_never_the_output(tmp_path, face_pixels):
    source = write_photo(tmp_path / "photo.png", face_pixels)
    before = source.read_bytes()
    with pytest.raises(OutputError, match="original"):
        anonymise_file(source, source, overwrite=True)
    assert source.read_bytes() == before


def test_a_failing_photo_writes_nothing(tmp_path):
    source = tmp_path / "bad.jpg"
    source.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(UnreadableImage):
        anonymise_file(source, tmp_path / "out.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jpg"]


def test_a_20_pixel_face_in_a_12_megapixel_photo_is_destroyed(tmp_path, face_pixels):
    """A phone photo's far face: 20 px tall in 4032×3024, written as JPEG, comes out destroyed."""
    import cv2

    from benchmarks.wider import box_ssim, grey

    rng = np.random.default_rng(3)
    photo = cv2.resize(rng.integers(60, 200, (190, 253, 3), dtype=np.uint8), (4032, 3024), interpolation=cv2.INTER_LINEAR)
    head = cv2.resize(face_pixels[20:220, 145:305], (32, 40), interpolation=cv2.INTER_AREA)  # face 20 px tall
    photo[2000:2040, 3000:3032] = head
    source = write_photo(tmp_path / "IMG_0001.jpg", photo, quality=92)
    result = anonymise_file(source, tmp_path / "out.jpg", Settings(keep_geometry=True))  # compared pixel by pixel
    assert (result.width, result.height) == (4032, 3024)
    output = np.asarray(Image.open(result.output).convert("RGB"))
    face = [3006, 2010, 20, 20]  # x, y, w, h: brow to chin
    assert box_ssim(grey(photo), grey(output), face) <= 0.5
    assert any(r.x0 <= 3010 and r.x1 >= 3022 and r.y0 <= 2012 and r.y1 >= 2028 for r in result.regions)


def test_alpha_of_a_drawn_rectangle_is_one_level_to_its_corners(face_pixels):
    alpha = np.zeros(face_pixels.shape[:2], np.uint8)
    alpha[30:50, 30:50] = 255
    drawn = Region(20, 20, 60, 60, shape=Shape.RECTANGLE)
    result = anonymise_image(face_pixels, Settings(shape=Shape.ELLIPSE), alpha=alpha, regions=[drawn])
    assert result.alpha[20, 20] == result.alpha[59, 59] == result.alpha[40, 40] == 64 and result.alpha[19, 19] == 0


@pytest.mark.parametrize("weakening", [
    {"padding": -3}, {"padding": 0.3}, {"padding": 0}, {"padding": float("nan")}, {"padding": float("inf")},
    {"padding": "1.5"}, {"method": "solidd"}, {"method": "SOLID"}, {"method": None}, {"shape": "circle"},
    {"shape": Method.SOLID}, {"quality": 0}, {"quality": 101}, {"quality": 50.5}, {"quality": True},
    {"max_pixels": 0}, {"max_pixels": -1}, {"max_pixels": 1.5}, {"detector": "nope"},
    {"detector_options": {"threshold": -0.1}}, {"detector_options": {"threshold": 1.5}},
    {"detector_options": {"threshold": float("nan")}}, {"detector_options": {"threshold": True}},
    {"detector_options": {"fast": "yes"}}, {"detector_options": {"thresold": 0.2}}, {"detector_options": None},
])
def test_settings_refuse_values_that_could_weaken_protection(weakening):
    with pytest.raises(InvalidSetting):
        Settings(**weakening)


def test_settings_take_exact_names_and_hold_the_enums():
    settings = Settings(method="solid", shape="rectangle", padding=2, detector_options={"threshold": 0.3, "fast": True})
    assert settings.method is Method.SOLID and settings.shape is Shape.RECTANGLE
    assert settings.padding == 2.0 and settings.detector_options == {"threshold": 0.3, "fast": True}
    assert Settings() == Settings(method=Method.MOSAIC, shape=Shape.ELLIPSE)


def test_a_negative_padding_cannot_write_the_face_untouched(tmp_path, face_pixels):
    source = write_photo(tmp_path / "face.png", face_pixels)
    with pytest.raises(InvalidSetting, match="padding"):
        anonymise_file(source, tmp_path / "out.png", Settings(padding=-3))
    assert not (tmp_path / "out.png").exists()


def test_anonymise_refuses_a_misspelt_method_or_shape(face_pixels):
    from blur.anonymise import anonymise

    with pytest.raises(ValueError):
        anonymise(face_pixels, [Region(0, 0, 10, 10)], "solidd")
    with pytest.raises(ValueError):
        anonymise(face_pixels, [Region(0, 0, 10, 10)], Method.SOLID, "rect")
    solid = anonymise(face_pixels, [Region(0, 0, 10, 10)], "solid", "rectangle")
    assert not solid[:10, :10].any()
