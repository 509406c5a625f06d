"""The review page end to end, in Debian's headless Chromium driven by Selenium through /usr/bin/chromedriver.

Skipped when Chromium, ChromeDriver or Selenium is missing; CI installs them (see .ci/run).
Set BLUR_SCREENSHOTS=DIR to keep the screenshots the tests take.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blur.decode import read_photo
from blur.pipeline import anonymise_file
from conftest import require_command, require_module
from review_helpers import EXACT, SAMPLES, SECRET_TEXT, call_json, changed_mask, face_png, faceless_png, start_server

CHROMIUM = require_command("chromium", "Debian's: apt-get install chromium chromium-driver")
CHROMEDRIVER = require_command("chromedriver", "Debian's: apt-get install chromium chromium-driver")
webdriver = require_module("selenium.webdriver", "in the test extra: pip install -e '.[test]'")
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.actions.action_builder import ActionBuilder  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

FOREIGN_HOST = "rebind.test"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    offline = pytest.MonkeyPatch()
    offline.setenv("SE_OFFLINE", "true")  # Selenium Manager must never download anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,900", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
                 # A DNS-rebinding attacker's name that resolves to this machine.
                 f"--host-resolver-rules=MAP {FOREIGN_HOST} 127.0.0.1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    offline.undo()


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "march"
    folder.mkdir()
    face_png(folder / "march-01.png")
    faceless_png(folder / "march-02.png")
    return folder


@pytest.fixture
def server(photos):
    server = start_server([photos], settings=EXACT)
    yield server
    server.stop()


def wait(driver, condition, seconds=20):
    return WebDriverWait(driver, seconds).until(lambda d: condition(d))


def open_page(driver, server):
    driver.get(server.url)
    wait(driver, lambda d: d.execute_script(
        "const i = document.getElementById('photo'); return i.complete && i.naturalWidth > 0;"))
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#queue li"))


def screenshot(driver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    keep = os.environ.get("BLUR_SCREENSHOTS")
    if keep:
        os.makedirs(keep, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return path


def image_box(driver) -> dict:
    return driver.execute_script(
        "const r = document.getElementById('photo').getBoundingClientRect();"
        "return {left: r.left, top: r.top, width: r.width, height: r.height};")


def drag_on_photo(driver, start: tuple[int, int], end: tuple[int, int]) -> None:
    """Press at `start` and release at `end`, both in photo pixels of the 512×512 test photo."""
    rect = image_box(driver)
    scale = rect["width"] / 512

    def on_screen(x, y):  # viewport coordinates, as a person's pointer would be
        return round(rect["left"] + x * scale), round(rect["top"] + y * scale)

    middle = ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
    actions = ActionBuilder(driver)
    (actions.pointer_action.move_to_location(*on_screen(*start)).pointer_down()
     .move_to_location(*on_screen(*middle)).move_to_location(*on_screen(*end)).pointer_up())
    actions.perform()


def saved(driver):
    text = driver.find_element(By.ID, "status").text
    assert "Not saved" not in text, text
    return text.startswith("Saved")


def test_page_shows_the_photo_and_the_detected_regions(browser, server, tmp_path):
    open_page(browser, server)
    boxes = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box:not(.maybe)"))
    assert len(boxes) == 1
    face = server.session.photos[0].regions[0].region
    rect, image = boxes[0].rect, image_box(browser)
    scale = image["width"] / 512
    assert abs(rect["x"] - image["left"] - face.x0 * scale) < 4
    assert abs(rect["y"] - image["top"] - face.y0 * scale) < 4
    assert abs(rect["width"] - face.width * scale) < 4
    assert "Photo 1 of 2" in browser.find_element(By.ID, "position").text
    assert "1 face found" in browser.find_element(By.ID, "notice").text
    assert "march-01.png" in browser.find_element(By.ID, "queue").text
    shot = screenshot(browser, tmp_path, "review-page")
    assert Image.open(shot).size[0] >= 1000
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []  # no script error, no blocked or failed load (everything ships in the package)


def test_queue_flags_a_photo_without_faces_and_keys_move_between_photos(browser, server, tmp_path):
    open_page(browser, server)
    queue = browser.find_elements(By.CSS_SELECTOR, "#queue li")
    assert "check" in queue[1].text and "check" not in queue[0].text
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)
    wait(browser, lambda d: "Photo 2 of 2" in d.find_element(By.ID, "position").text)
    wait(browser, lambda d: "No face was found" in d.find_element(By.ID, "notice").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#boxes .box:not(.maybe)") == []
    screenshot(browser, tmp_path, "review-no-face")
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_LEFT)
    wait(browser, lambda d: "Photo 1 of 2" in d.find_element(By.ID, "position").text)


def test_drawing_a_region_and_removing_the_detection_then_exporting(browser, server, photos, tmp_path):
    open_page(browser, server)
    face = server.session.photos[0].regions[0].region
    box = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box:not(.maybe)"))[0]
    box.click()
    wait(browser, lambda d: not d.find_element(By.ID, "remove").get_attribute("disabled"))
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.DELETE)
    wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "#boxes .box:not(.maybe)"))

    drag_on_photo(browser, (340, 390), (440, 480))  # over the spacesuit, away from the face
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#boxes .box.person")) == 1)
    browser.find_element(By.XPATH, "//label[normalize-space()='Rectangle']").click()
    screenshot(browser, tmp_path, "review-drawn")
    browser.find_element(By.ID, "export").click()
    wait(browser, saved)

    (reviewed,) = server.session.photos[0].regions
    drawn = reviewed.region
    assert reviewed.keep is False and drawn.source == "person"
    assert abs(drawn.x0 - 340) <= 3 and abs(drawn.y0 - 390) <= 3 and abs(drawn.x1 - 440) <= 3 and abs(drawn.y1 - 480) <= 3
    output = photos / "march-01.blurred.png"
    before = read_photo(photos / "march-01.png").pixels
    after = read_photo(output).pixels
    changed = changed_mask(before, after)
    inside = np.zeros_like(changed)
    inside[drawn.y0:drawn.y1, drawn.x0:drawn.x1] = True
    assert not changed[~inside].any(), "pixels outside the drawn region changed"
    assert changed[inside].mean() > 0.9
    assert not changed[face.y0:face.y1, face.x0:face.x1].any(), "the removed detection's face was changed"


def test_preview_then_save_all_writes_metadata_free_copies(browser, server, photos, tmp_path):
    open_page(browser, server)
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("p")
    wait(browser, lambda d: (d.find_element(By.ID, "photo").get_attribute("src") or "").startswith("blob:"))
    wait(browser, lambda d: d.execute_script("return document.getElementById('photo').complete"))
    assert "Preview" in browser.find_element(By.ID, "notice").text
    assert not browser.find_element(By.ID, "boxes").is_displayed()
    screenshot(browser, tmp_path, "review-preview")
    body.send_keys("p")
    wait(browser, lambda d: d.find_element(By.ID, "boxes").is_displayed())

    browser.find_element(By.ID, "export-all").click()
    alert = wait(browser, lambda d: _alert(d))  # photo 2 was never looked at: the page asks first
    assert "not been looked at" in alert.text
    alert.accept()
    wait(browser, lambda d: "Saved 2 photos" in d.find_element(By.ID, "status").text)
    screenshot(browser, tmp_path, "review-saved")
    assert sorted(os.listdir(photos)) == ["march-01.blurred.png", "march-01.png", "march-02.blurred.png",
                                          "march-02.png"]
    face = server.session.photos[0].regions[0].region
    before = read_photo(photos / "march-01.png").pixels
    after = read_photo(photos / "march-01.blurred.png").pixels
    assert changed_mask(before, after)[face.y0:face.y1, face.x0:face.x1].mean() > 0.5
    for name in ("march-01.blurred.png", "march-02.blurred.png"):
        data = (photos / name).read_bytes()
        for secret in (SECRET_TEXT.encode(), b"tEXt", b"iTXt", b"zTXt", b"eXIf", b"iCCP", b"Exif"):
            assert secret not in data
        with Image.open(photos / name) as image:
            assert image.info == {}


def _alert(driver):
    try:
        return driver.switch_to.alert
    except NoAlertPresentException:
        return None


def test_requests_without_the_token_or_with_a_foreign_host_are_refused(browser, server):
    browser.get(f"http://127.0.0.1:{server.port}/")
    assert "refused" in browser.find_element(By.TAG_NAME, "body").text
    assert not browser.find_elements(By.ID, "photo")
    browser.get(f"http://127.0.0.1:{server.port}/{server.token[:-2]}/")
    assert "refused" in browser.find_element(By.TAG_NAME, "body").text
    # DNS rebinding: a name the attacker controls now points at 127.0.0.1; the Host header gives it away.
    browser.get(f"http://{FOREIGN_HOST}:{server.port}/{server.token}/")
    assert "refused" in browser.find_element(By.TAG_NAME, "body").text
    assert not browser.find_elements(By.ID, "photo")
    browser.get(f"http://{FOREIGN_HOST}:{server.port}/{server.token}/api/photos")
    assert "march" not in browser.page_source


def test_resizing_a_box_and_keeping_a_face_visible(browser, server, photos, tmp_path):
    open_page(browser, server)
    face = server.session.photos[0].regions[0].region
    body = browser.find_element(By.TAG_NAME, "body")
    drag_on_photo(browser, (40, 300), (100, 360))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box.person .handle.se"))
    handle = browser.find_element(By.CSS_SELECTOR, "#boxes .box.person .handle.se")
    scale = image_box(browser)["width"] / 512
    ActionChains(browser).click_and_hold(handle).move_by_offset(round(20 * scale), round(20 * scale)) \
        .move_by_offset(round(20 * scale), round(20 * scale)).release().perform()
    browser.find_elements(By.CSS_SELECTOR, "#boxes .box:not(.person):not(.maybe)")[0].click()
    body.send_keys("v")  # keep the detected face visible on purpose
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box.keep"))
    assert "will stay visible" in browser.find_element(By.ID, "selection").text
    screenshot(browser, tmp_path, "review-kept-visible")
    body.send_keys("s")
    wait(browser, saved)
    kept, drawn = sorted(server.session.photos[0].regions, key=lambda r: r.region.source == "person")
    assert kept.keep and (kept.region.x0, kept.region.y0, kept.region.x1, kept.region.y1) == (face.x0, face.y0, face.x1, face.y1)
    assert abs(drawn.region.x1 - 140) <= 4 and abs(drawn.region.y1 - 400) <= 4, drawn.region
    before = read_photo(photos / "march-01.png").pixels
    changed = changed_mask(before, read_photo(photos / "march-01.blurred.png").pixels)
    assert not changed[face.y0:face.y1, face.x0:face.x1].any()
    assert changed[drawn.region.y0 + 5:drawn.region.y1 - 5, drawn.region.x0 + 5:drawn.region.x1 - 5].mean() > 0.5


def test_drawing_while_zoomed_in_maps_to_photo_pixels(browser, server, tmp_path):
    open_page(browser, server)
    fit_width = image_box(browser)["width"]
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("+")
    body.send_keys("+")
    wait(browser, lambda d: d.find_element(By.ID, "zoom-level").text == "200%")
    assert abs(image_box(browser)["width"] - 2 * fit_width) < 2
    drag_on_photo(browser, (230, 240), (290, 290))
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box.person"))
    screenshot(browser, tmp_path, "review-zoomed")
    body.send_keys("0")
    wait(browser, lambda d: d.find_element(By.ID, "zoom-fit").get_attribute("disabled"))
    wait(browser, lambda d: any(r.region.source == "person" for r in server.session.photos[0].regions))
    drawn = next(r.region for r in server.session.photos[0].regions if r.region.source == "person")
    assert max(abs(drawn.x0 - 230), abs(drawn.y0 - 240), abs(drawn.x1 - 290), abs(drawn.y1 - 290)) <= 2


# --- issue 13: drawn boxes, an earlier copy, and the page's small flaws -----------------------------

def test_a_box_drawn_while_faces_get_ovals_is_hidden_to_its_corners(browser, server, photos):
    """The issue: a box drawn in oval mode left its corners, a name tag's corners, readable."""
    open_page(browser, server)
    assert browser.find_element(By.CSS_SELECTOR, "input[name=shape][value=ellipse]").is_selected()
    drag_on_photo(browser, (330, 380), (440, 470))  # the name tag on the spacesuit
    wait(browser, lambda d: any(r.region.source == "person" for r in server.session.photos[0].regions))
    browser.find_element(By.TAG_NAME, "body").send_keys("s")
    wait(browser, saved)
    drawn = next(r.region for r in server.session.photos[0].regions if r.region.source == "person")
    changed = changed_mask(read_photo(photos / "march-01.png").pixels, read_photo(photos / "march-01.blurred.png").pixels)
    for y, x in ((drawn.y0, drawn.x0), (drawn.y0, drawn.x1 - 4), (drawn.y1 - 4, drawn.x0), (drawn.y1 - 4, drawn.x1 - 4)):
        assert changed[y:y + 4, x:x + 4].mean() > 0.5, (y, x)


def test_an_earlier_copy_is_shown_before_saving_and_replaced_only_when_asked(browser, tmp_path):
    folder = tmp_path / "march"
    folder.mkdir()
    for name in ("march-01.png", "march-02.png"):
        face_png(folder / name)
        anonymise_file(folder / name, folder / name.replace(".png", ".blurred.png"))  # `blur march/` first
    automatic = {name: (folder / name).read_bytes() for name in ("march-01.blurred.png", "march-02.blurred.png")}
    server = start_server([folder], settings=EXACT)
    try:
        open_page(browser, server)
        wait(browser, lambda d: d.find_element(By.ID, "existing").is_displayed())
        assert "already saved" in browser.find_element(By.ID, "existing").text
        assert "earlier copy" in browser.find_element(By.ID, "queue").text
        assert browser.find_element(By.ID, "export").get_attribute("disabled")
        browser.find_element(By.TAG_NAME, "body").send_keys("s")
        wait(browser, lambda d: "Replace" in d.find_element(By.ID, "status").text)
        assert (folder / "march-01.blurred.png").read_bytes() == automatic["march-01.blurred.png"]

        browser.find_element(By.XPATH, "//label[normalize-space()='Black']").click()
        browser.find_element(By.ID, "replace").click()
        export = browser.find_element(By.ID, "export")
        wait(browser, lambda d: not export.get_attribute("disabled") and export.text == "Replace blurred copy")
        export.click()
        wait(browser, saved)
        assert not browser.find_element(By.ID, "existing").is_displayed()

        browser.find_element(By.ID, "export-all").click()
        wait(browser, _alert).accept()  # photo 2 was not looked at
        alert = wait(browser, _alert)
        assert "earlier run" in alert.text
        alert.dismiss()  # keep the earlier copy: nothing is saved
        assert (folder / "march-02.blurred.png").read_bytes() == automatic["march-02.blurred.png"]
        browser.find_element(By.ID, "export-all").click()
        wait(browser, _alert).accept()
        wait(browser, _alert).accept()
        wait(browser, lambda d: "Saved 2 photos" in d.find_element(By.ID, "status").text)
    finally:
        server.stop()
    assert sorted(os.listdir(folder)) == ["march-01.blurred.png", "march-01.png", "march-02.blurred.png", "march-02.png"]
    face = server.session.photos[0].regions[0].region
    cy, cx = (face.y0 + face.y1) // 2, (face.x0 + face.x1) // 2
    assert read_photo(folder / "march-01.blurred.png").pixels[cy - 10:cy + 10, cx - 10:cx + 10].max() == 0
    assert (folder / "march-02.blurred.png").read_bytes() != automatic["march-02.blurred.png"]


@pytest.fixture
def wide_server(tmp_path):
    """A wide photo (it fills the page's width at Fit) with a row of uncertain boxes, one at its right edge
    and two far apart (their labels have room, whatever the detector finds)."""
    pixels = read_photo(SAMPLES / "astronaut.jpg").pixels
    Image.fromarray(np.concatenate([pixels] * 3, axis=1)).save(tmp_path / "wide.png")
    server = start_server([tmp_path / "wide.png"])
    found = [{"x0": r.region.x0, "y0": r.region.y0, "x1": r.region.x1, "y1": r.region.y1, "score": r.region.score,
              "source": r.region.source} for r in server.session.photos[0].regions]
    source = found[0]["source"]
    row = [{"x0": 40 + 40 * i, "y0": 300, "x1": 76 + 40 * i, "y1": 336, "score": 0.3, "source": source} for i in range(12)]
    edge = {"x0": 1500, "y0": 200, "x1": 1536, "y1": 236, "score": 0.3, "source": source}
    apart = [{"x0": x, "y0": 420, "x1": x + 36, "y1": 456, "score": 0.3, "source": source} for x in (600, 1000)]
    status, _ = call_json(server, "PUT", "api/photos/0", {"regions": found + row + [edge] + apart})
    assert status == 200
    yield server
    server.stop()


def test_labels_stay_apart_and_inside_the_photo_at_fit(browser, wide_server, tmp_path):
    """The issue: "not sure" labels overlapped at Fit, and one past the photo's edge gave a horizontal scrollbar."""
    open_page(browser, wide_server)
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#boxes .box.weak")) >= 13)
    screenshot(browser, tmp_path, "review-crowded-labels")
    overflow = browser.execute_script(
        "const w = document.querySelector('.stage-wrap'); return [w.scrollWidth - w.clientWidth, w.scrollHeight - w.clientHeight];")
    assert overflow == [0, 0]
    rects = browser.execute_script("""
        const r = (e) => { const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
        const tags = [...document.querySelectorAll('#boxes .tag')].filter((t) => t.offsetParent !== null);
        return { tags: tags.map(r), owners: tags.map((t) => [...t.parentNode.parentNode.children].indexOf(t.parentNode)),
                 boxes: [...document.querySelectorAll('#boxes .box')].map(r), photo: r(document.getElementById('photo')) };""")
    tags, boxes, (left, top, right, bottom) = rects["tags"], rects["boxes"], rects["photo"]
    assert len(tags) >= 5  # some labels still show

    def overlap(a, b):
        return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5

    for i, tag in enumerate(tags):
        assert left - 0.5 <= tag[0] and tag[2] <= right + 0.5 and top - 0.5 <= tag[1] and tag[3] <= bottom + 0.5, tag
        assert not any(overlap(tag, other) for other in tags[i + 1:]), tag
        assert not any(overlap(tag, box) for j, box in enumerate(boxes) if j != rects["owners"][i]), tag


def test_the_zoom_controls_say_fit_once(browser, server):
    open_page(browser, server)
    zoom = browser.find_element(By.CSS_SELECTOR, ".zoom")
    shown = [e.text for e in zoom.find_elements(By.CSS_SELECTOR, "*") if e.is_displayed() and e.text]
    assert shown.count("Fit") == 1, shown
    browser.find_element(By.TAG_NAME, "body").send_keys("+")
    wait(browser, lambda d: d.find_element(By.ID, "zoom-level").text == "150%")
    shown = [e.text for e in zoom.find_elements(By.CSS_SELECTOR, "*") if e.is_displayed() and e.text]
    assert shown.count("Fit") == 1 and "150%" in shown, shown


def contrast(color: str, background: str) -> float:
    """WCAG contrast ratio of two CSS rgb()/rgba() colours."""
    def luminance(css):
        channels = [float(v) / 255 for v in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
        linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    light, dark = sorted((luminance(color), luminance(background)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_preview_button_is_readable_while_on(browser, server):
    """The issue: with preview on and the pointer still on the button, its label was white on light grey."""
    open_page(browser, server)
    button = browser.find_element(By.ID, "preview")
    ActionChains(browser).move_to_element(button).click().perform()
    wait(browser, lambda d: button.get_attribute("aria-pressed") == "true")
    color, background = browser.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.color, s.backgroundColor];", button)
    assert contrast(color, background) >= 4.5, (color, background)
    button.click()
    wait(browser, lambda d: button.get_attribute("aria-pressed") == "false")


def test_the_maybe_layer_shows_hides_what_is_covered_and_takes_one_key_each(browser, photos, monkeypatch, tmp_path):
    """The second opinion's places are drawn apart from the faces found; H hides what is covered
    (the saved look, no boxes but the maybes); M steps to a maybe, Enter covers it, X dismisses it."""
    from blur.check.faces import Maybe
    from blur.detect import Detection

    maybes = [Maybe(Detection(300, 360, 360, 430, 0.9, "centerface"), "CenterFace, under blur's bar"),
              Maybe(Detection(40, 400, 90, 460, 0.4, "yunet"), "YuNet, another face model")]
    monkeypatch.setattr("blur.review.session.second_opinion", lambda pixels, covered, *rest: list(maybes))
    server = start_server([photos], settings=EXACT)
    try:
        open_page(browser, server)
        body = browser.find_element(By.TAG_NAME, "body")
        found = lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box:not(.maybe)")
        shown = lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box.maybe")
        wait(browser, lambda d: len(shown(d)) == 2 and len(found(d)) == 1)
        ranks = lambda d: [b.get_attribute("title").split(":")[0] for b in shown(d)]
        assert ranks(browser) == ["maybe 1", "maybe 2"]

        body.send_keys("h")  # hide what is covered: the saved look, only the maybes drawn
        wait(browser, lambda d: not found(d) and len(shown(d)) == 2)
        wait(browser, lambda d: d.find_element(By.ID, "photo").get_attribute("src").startswith("blob:"))
        assert browser.find_element(By.ID, "hunt").get_attribute("aria-pressed") == "true"
        screenshot(browser, tmp_path, "review-hunt")

        body.send_keys("m")
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#boxes .box.maybe.selected"))
        assert "Maybe 1" in browser.find_element(By.ID, "selection").text
        body.send_keys(Keys.ENTER)  # cover it: it becomes a box the person drew
        wait(browser, lambda d: ranks(d) == ["maybe 2"])
        body.send_keys("m")
        body.send_keys("x")  # not a face: dismissed
        wait(browser, lambda d: not shown(d))

        body.send_keys("h")  # back: every box, the new one among them
        wait(browser, lambda d: len(found(d)) == 2 and d.find_elements(By.CSS_SELECTOR, "#boxes .box.person"))
        record = wait(browser, lambda d: next((r for r in call_json(server, "GET", "api/photos/0")[1]["regions"]
                                               if r["source"] == "person"), None))
        assert record["x0"] <= 300 and record["y0"] <= 360 and record["x1"] >= 360 and record["y1"] >= 430
        assert len(call_json(server, "GET", "api/photos/0")[1]["regions"]) == 2  # the dismissed one added nothing
    finally:
        server.stop()
