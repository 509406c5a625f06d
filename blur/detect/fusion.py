"""Fusion: one scored box per face from the boxes of every view, and the bar each must clear.

A face the model finds in several views is more likely real than a pattern it finds in one, so
each cluster of overlapping boxes is scored by its best few views together. The bar then depends
on the box's size: a false alarm costs the photo its area, so a small box (where the faint, far
faces are) may clear a low bar, while a large one must score higher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CLUSTER_IOU = 0.4
"""Boxes overlapping a cluster's strongest box by this much are the same face."""


@dataclass(frozen=True)
class SizedThreshold:
    """`base` for boxes up to `small` photo pixels tall, rising in log-height to `base * rise` at `large`."""

    base: float
    rise: float = 3.5
    small: float = 24.0
    large: float = 96.0

    def __post_init__(self):
        if not 0 < self.base < 1 or self.rise < 1 or not 0 < self.small < self.large:
            raise ValueError("a threshold needs 0 < base < 1, rise >= 1 and 0 < small < large")

    def at(self, heights: np.ndarray) -> np.ndarray:
        """The threshold for boxes of these heights (photo pixels)."""
        share = np.clip(np.log(np.maximum(heights, 1e-6) / self.small) / math.log(self.large / self.small), 0, 1)
        return np.minimum(self.base * (1 + share * (self.rise - 1)), 0.99)


def fuse_views(views: list[np.ndarray], support: tuple[float, ...], *, iou: float = CLUSTER_IOU) -> np.ndarray:
    """Cluster boxes from all views: M×5 fused boxes (score-weighted mean corners, support score).

    Clusters are led by the boxes that survive non-maximum suppression over all views; every
    other box joins the leader it overlaps most. A cluster scores the weighted sum of its best
    score in each of its best views: `support` holds the weights, best view first (a view that
    did not see it counts 0), so one weak view alone rarely clears the threshold and a face seen
    in several does. With fewer views than weights, the weights of the views there are count.
    """
    counts = [len(v) for v in views]
    if not sum(counts):
        return np.empty((0, 5), np.float32)
    boxes = np.concatenate([v[:, :5] for v in views if len(v)]).astype(np.float64)
    view_of = np.repeat(np.arange(len(views)), counts)
    leaders = suppress_overlaps(boxes, iou)
    member, leader = overlapping_pairs(boxes, boxes[leaders], iou)
    # each box joins the leader it overlaps most (a leader always overlaps itself fully)
    overlap = iou_rows(boxes[member], boxes[leaders][leader])
    order = np.lexsort((-overlap, member))
    first = np.ones(len(order), bool)
    first[1:] = member[order][1:] != member[order][:-1]
    member, cluster = member[order][first], leader[order][first]
    weights = boxes[member, 4]
    corners = np.zeros((len(leaders), 4))
    np.add.at(corners, cluster, boxes[member, :4] * weights[:, None])
    total = np.zeros(len(leaders))
    np.add.at(total, cluster, weights)
    best = np.zeros((len(leaders), len(views)))
    np.maximum.at(best, (cluster, view_of[member]), weights)
    share = np.asarray(support[: len(views)], np.float64)  # a photo seen in fewer views: the weights of those
    score = np.sort(best, axis=1)[:, ::-1][:, : len(share)] @ (share / share.sum())
    return np.column_stack([corners / total[:, None], score]).astype(np.float32)


def overlapping_pairs(boxes: np.ndarray, leaders: np.ndarray, iou: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices (box, leader) of the pairs that overlap by at least `iou`, found without an N×M matrix.

    Boxes that overlap this much have sides within a factor `iou` of each other and nearby centres.
    Leaders are hashed by size band (the longer side, in powers of two) into grid cells wide enough
    for any overlapping pair's centres, and each box is compared only with the leaders of the bands
    it could match, in its own and the eight neighbouring cells.
    """
    sizes = np.maximum(np.maximum(leaders[:, 2] - leaders[:, 0], leaders[:, 3] - leaders[:, 1]), 1.0)
    band = np.floor(np.log2(sizes)).astype(int)
    centres = np.column_stack([(leaders[:, 0] + leaders[:, 2]) / 2, (leaders[:, 1] + leaders[:, 3]) / 2])
    box_sizes = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    box_centres = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2])
    ratio = 1.0 / max(iou, 1e-3) * 1.01
    members, leads = [np.empty(0, int)], [np.empty(0, int)]
    for b in np.unique(band):
        in_band = np.nonzero(band == b)[0]
        # a pair overlaps only if its centres are closer than half the sum of its sides
        cell = 2.0 ** b * (1 + ratio)
        cells = np.floor(centres[in_band] / cell).astype(np.int64)
        keys = cells[:, 0] * _ROW + cells[:, 1]
        order = np.argsort(keys)
        keys = keys[order]
        near = np.nonzero((box_sizes >= 2.0**b / ratio) & (box_sizes <= 2.0 ** (b + 1) * ratio))[0]
        box_cells = np.floor(box_centres[near] / cell).astype(np.int64)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                wanted = (box_cells[:, 0] + dx) * _ROW + box_cells[:, 1] + dy
                start = np.searchsorted(keys, wanted, "left")
                spans = np.searchsorted(keys, wanted, "right") - start
                member = np.repeat(np.arange(len(near)), spans)
                within = np.arange(spans.sum()) - np.repeat(np.cumsum(spans) - spans, spans)
                members.append(near[member])
                leads.append(in_band[order[start[member] + within]])
    member, leader = np.concatenate(members), np.concatenate(leads)
    keep = iou_rows(boxes[member], leaders[leader]) >= iou - 1e-9
    return member[keep], leader[keep]


def suppress_overlaps(boxes: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes that greedy non-maximum suppression keeps: best score first, each box
    dropped if it overlaps a kept one by more than `iou`. Only overlapping pairs are compared."""
    count = len(boxes)
    if count <= 1:
        return np.arange(count)
    member, other = overlapping_pairs(boxes, boxes, iou)
    strict = (member != other) & (iou_rows(boxes[member], boxes[other]) > iou)
    member, other = member[strict], other[strict]
    order = np.argsort(member, kind="stable")
    member, other = member[order], other[order]
    starts = np.searchsorted(member, np.arange(count + 1))
    suppressed = np.zeros(count, bool)
    kept = []
    for index in np.argsort(-boxes[:, 4], kind="stable"):
        if suppressed[index]:
            continue
        kept.append(index)
        suppressed[other[starts[index] : starts[index + 1]]] = True
    return np.array(kept, int)


_ROW = 1 << 32
"""Grid cells are keyed x * _ROW + y (y stays far below it)."""


def iou_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise intersection over union of two equally long arrays of (x0, y0, x1, y1) boxes."""
    width = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    height = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = width * height
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return inter / np.maximum(union, 1e-9)
