"""A contact sheet: each place the check points at, cropped with its surroundings and numbered.

A person finds a face left in a picture far quicker than in a list of coordinates. The sheet
holds crops of the photos checked, faces perhaps among them: `blur check` writes it readable by its
owner alone, and it is never to be posted.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..detect import Detection

TILE = 200
"""Side of one crop on the sheet, in pixels."""
LABEL = 22
"""Height of the strip under each crop that holds its number and kind."""
COLUMNS = 5
CONTEXT = 3.0
"""A crop shows this many times the box's larger side, so the person sees what surrounds it."""
COLOURS = {"face": (220, 30, 30), "maybe": (240, 150, 0)}
"""Red for what fails the check, orange for the second opinion's maybes (RGB)."""


@dataclass(frozen=True)
class Tile:
    """One numbered place to look at, cropped from its photo (so no whole photo is kept for the sheet)."""

    number: int
    kind: str
    """"face" (fails the check) or "maybe" (the second opinion)."""
    crop: np.ndarray
    """TILE×TILE RGB: the box with its surroundings, outlined."""


def tile(number: int, kind: str, pixels: np.ndarray, box: Detection) -> Tile:
    """The tile of `box` in the upright RGB photo `pixels`."""
    return Tile(number, kind, _crop(kind, pixels, box))


def contact_sheet(tiles: list[Tile]) -> np.ndarray:
    """An RGB image of the tiles' crops in rows of COLUMNS, each outlined and labelled with its number."""
    rows = max(1, -(-len(tiles) // COLUMNS))
    sheet = np.full((rows * (TILE + LABEL), min(max(len(tiles), 1), COLUMNS) * TILE, 3), 255, np.uint8)
    for i, one in enumerate(tiles):
        top, left = (i // COLUMNS) * (TILE + LABEL), (i % COLUMNS) * TILE
        sheet[top : top + TILE, left : left + TILE] = one.crop
        cv2.putText(sheet, f"{one.number} {one.kind}", (left + 6, top + TILE + LABEL - 6), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6, COLOURS[one.kind], 2, cv2.LINE_AA)
    return sheet


def _crop(kind: str, pixels: np.ndarray, box: Detection) -> np.ndarray:
    """The box with its surroundings, scaled to TILE×TILE (black past the photo's edge), outlined."""
    side = max(box.x1 - box.x0, box.y1 - box.y0, 8.0) * CONTEXT
    cx, cy = (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2
    scale = TILE / side
    matrix = np.array([[scale, 0, TILE / 2 - cx * scale], [0, scale, TILE / 2 - cy * scale]], np.float64)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    crop = cv2.warpAffine(pixels, matrix, (TILE, TILE), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)
    corners = [(box.x0, box.y0), (box.x1, box.y1)]
    (x0, y0), (x1, y1) = [(int(round(x * scale + matrix[0, 2])), int(round(y * scale + matrix[1, 2]))) for x, y in corners]
    cv2.rectangle(crop, (x0 - 2, y0 - 2), (x1 + 1, y1 + 1), COLOURS[kind], 2)
    return crop
