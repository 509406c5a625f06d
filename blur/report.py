"""Reports: what happened to each file (`Outcome`), how it was processed, and the report a run writes.

A report names every original and links random names to them: it is written readable by its owner
alone. Each photo anonymised names the way it was processed (the tool's version, every setting, the
detector's own description), so a figure or a complaint can be traced to what produced it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable

from . import __version__
from .detect import Detector
from .encode import write_atomically
from .pipeline import Settings
from .regions import Region


class Status(Enum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOT_READ = "not read"
    """A file in a folder that is not a photo this tool reads (camera raw, video, anything else)."""


@dataclass
class Outcome:
    """What happened to one input file."""

    source: Path
    destination: Path | None
    status: Status
    faces: list[dict] | None = field(default_factory=list)
    """The regions destroyed; None when not known (a photo done by an earlier run is not looked at again)."""
    method: str = ""
    error: str | None = None
    seconds: float = 0.0
    processing: dict | None = None
    """How the photo was anonymised (`describe_processing`), for the photos anonymised in this run."""
    camera_unlinked: bool | None = None
    """Whether the output was unlinked from its camera's sensor pattern; None when not known."""
    video: dict | None = None
    """For a video anonymised: frames, size, audio kept, regions destroyed over all frames."""

    def record(self) -> dict:
        record = {
            "input": os.fsdecode(self.source),
            "output": os.fsdecode(self.destination) if self.destination else None,
            "status": self.status.value,
            "faces": self.faces,
            "method": self.method,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "processing": self.processing,
            "camera_unlinked": self.camera_unlinked,
        }
        if self.video is not None:
            record["video"] = self.video
        return record

    @classmethod
    def from_record(cls, record: dict) -> "Outcome":
        """The outcome a `record()` describes (as saved in a report or state file), every field by name."""
        output = record["output"]
        return cls(Path(record["input"]), Path(output) if output else None, Status(record["status"]),
                   faces=record["faces"], method=record["method"], error=record["error"], seconds=record["seconds"],
                   processing=record.get("processing"), camera_unlinked=record.get("camera_unlinked"),
                   video=record.get("video"))


def describe_processing(settings: Settings, detector: Detector) -> dict:
    """Everything that decided how a photo was anonymised: the tool's version, every setting, and
    the detector's own description (model file and hash, threshold, views)."""
    return {"tool": f"soft-focus {__version__}", "settings": settings_record(settings), "detector": detector.describe()}


def face_records(regions: Iterable[Region]) -> list[dict]:
    """The regions destroyed in a photo, as a report lists them (boxes in the original's pixels)."""
    return [{"box": [r.x0, r.y0, r.x1, r.y1], "score": round(r.score, 4), "source": r.source} for r in regions]


def settings_record(settings: Settings) -> dict:
    return {
        "method": settings.method.value,
        "shape": settings.shape.value,
        "padding": settings.padding,
        "detector": settings.detector,
        "detector_options": settings.detector_options,
        "max_pixels": settings.max_pixels,
        "quality": settings.quality,
        "keep_geometry": settings.keep_geometry,
    }


def people_seen(faces: list[dict]) -> int:
    """The most faces tracked at once in a video (`faces`: one per track, with its first and last frame).

    A face lost and found again starts a new track, so tracks over-count people; faces at once do
    not (and count fewer than were seen when people come and go, as in a pan)."""
    changes = sorted(change for face in faces for change in ((face["frames"][0], 1), (face["frames"][1] + 1, -1)))
    most = now = 0
    for _, change in changes:
        now += change
        most = max(most, now)
    return most


def summarise(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many outcomes of each status, "faces": the faces destroyed in the photos done (this run),
    and "people": those seen in the videos done (`people_seen`)."""
    counts = {status.value: 0 for status in Status}
    faces = people = 0
    for outcome in outcomes:
        counts[outcome.status.value] += 1
        if outcome.video is None:
            faces += len(outcome.faces or ())
        else:
            people += outcome.video.get("people", 0)
    counts["faces"], counts["people"] = faces, people
    return counts


def write_report(outcomes: list[Outcome], path: str | Path) -> None:
    """Write a JSON report (or CSV if `path` ends in .csv) of every outcome, readable by the owner only.

    Each photo anonymised names the way it was processed (`describe_processing`): in JSON, an entry
    of "processing" that its "processed_with" refers to; in CSV, the tool, settings and detector
    columns. A photo skipped because an earlier run did it takes its faces and processing from the
    report this one replaces (a resumed batch writes its report where the first run did); without
    one they are unknown (null). The summary counts this run's outcomes.
    """
    path = Path(path)
    records = _with_earlier_records([outcome.record() for outcome in outcomes], path)
    if path.suffix.lower() == ".csv":
        text = _csv_report(records)
    else:
        processing: dict[str, dict] = {}
        ids: dict[str, str] = {}
        for record in records:
            description = record.pop("processing")
            key = json.dumps(description, sort_keys=True)
            if description is not None and key not in ids:
                ids[key] = str(len(ids) + 1)
                processing[ids[key]] = description
            record["processed_with"] = ids.get(key)
        text = json.dumps(
            {"processing": processing, "summary": summarise(outcomes), "files": records},
            indent=2,
            ensure_ascii=False,
        )
    # A file name that is not valid UTF-8 becomes a \udcXX escape: valid JSON that json.loads and
    # os.fsencode turn back into the original bytes, instead of bytes that break every JSON parser.
    write_atomically(text.encode("utf-8", "backslashreplace"), path, overwrite=True, private=True)


def _with_earlier_records(records: list[dict], path: Path) -> list[dict]:
    """`records`, where skipped photos take their faces and processing from the JSON report at `path`."""
    if path.suffix.lower() == ".csv" or not any(r["status"] == Status.SKIPPED.value for r in records):
        return records
    try:
        earlier = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
        processing = earlier["processing"]
        done = {(r["input"], r["output"]): r for r in earlier["files"] if r["status"] in ("done", "skipped")}
    except (OSError, ValueError, KeyError, TypeError):  # no earlier report, or not one of ours
        return records
    for record in records:
        before = done.get((record["input"], record["output"]))
        if record["status"] == Status.SKIPPED.value and before is not None and before.get("faces") is not None:
            record["faces"] = before["faces"]
            record["processing"] = processing.get(before.get("processed_with"))
            record["camera_unlinked"] = before.get("camera_unlinked")
    return records


def _csv_report(records: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["input", "output", "status", "faces", "boxes", "method", "error", "seconds", "tool",
                     "settings", "detector", "camera_unlinked"])
    for r in records:
        known = r["faces"] is not None
        boxes = json.dumps([face["box"] for face in r["faces"]]) if known else ""
        processing = r["processing"] or {}
        described = [json.dumps(processing[key], sort_keys=True) if key in processing else ""
                     for key in ("settings", "detector")]
        writer.writerow([r["input"], r["output"] or "", r["status"], len(r["faces"]) if known else "", boxes,
                         r["method"], r["error"] or "", r["seconds"], processing.get("tool", ""), *described,
                         "" if r["camera_unlinked"] is None else str(r["camera_unlinked"]).lower()])
    return buffer.getvalue()
