"""Jobs: files and folders turned into one job per file, each knowing what it is and what it writes.

A job's kind (photo, video, or a file not read) and the format of its copy are decided once, when
it is planned, from the file's name and first bytes: the runner, the cluster and the reports use
what the job says. Outputs go beside each input as <stem>.blurred.<ext>, or under an output folder
mirroring each folder's layout, or get random names (blur.names). The tool's own outputs are never
inputs, and no two jobs may write one name.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .decode import sniff_format
from .formats import VIDEO_OUTPUT, extension_of, photo_output
from .kinds import NOT_READ_KINDS, READ_KINDS, Kind, kind_of
from .names import is_random_output, random_stem

OUTPUT_TAG = ".blurred"
"""Inserted before the extension of every output: photo.jpg -> photo.blurred.jpg."""


@dataclass(frozen=True)
class Job:
    """One file to handle, and all that was decided about it when it was planned."""

    source: Path
    destination: Path
    kind: Kind
    output: str | None = None
    """The format its copy is written in (blur.formats: a photo format's name, or VIDEO_OUTPUT)."""
    problem: str | None = None
    """Set when planning already knows this job cannot run (missing file, clashing output, not read)."""
    not_read: bool = False
    """A file found in a folder that is not a photo or video this tool reads: `problem` says why."""


def plan_jobs(
    paths: Iterable[str | Path],
    output_dir: str | Path | None = None,
    *,
    random_names: bool = False,
    not_read: bool = False,
) -> list[Job]:
    """One job per photo or video: files as given, folders searched recursively.

    Outputs go beside each input as <stem>.blurred.<ext>, or under `output_dir` mirroring each
    folder's layout. With `random_names`, outputs get random names (flat in `output_dir` if given),
    so neither file nor folder names travel with the photo; the same photo gets the same name on
    every run (see `blur.names`). The tool's own outputs are never inputs. A file given by name
    that is no photo (a camera raw file, a video in another format) fails with the reason. With
    `not_read`, each other file found in the folders also gets a job, which only reports it as not read.
    """
    output_dir = Path(output_dir) if output_dir is not None else None
    jobs: list[Job] = []
    for given in map(Path, paths):
        if given.is_dir():
            for path, problem in _files_in(given, output_dir):
                if problem:
                    jobs.append(Job(path, path, kind_of(path), problem=problem))
                    continue
                job = plan_file(path, given, output_dir, random_names)
                if job.kind in READ_KINDS:
                    jobs.append(job)
                elif not_read:
                    jobs.append(dataclasses.replace(job, not_read=True))
        elif given.exists() or given.is_symlink():
            job = plan_file(given, None, output_dir, random_names)
            if job.kind not in READ_KINDS and not given.is_file():  # a pipe or device: fails when read, saying so
                job = plan_file(given, None, output_dir, random_names, kind=Kind.PHOTO)
            jobs.append(job)
        else:
            jobs.append(Job(given, given, kind_of(given), problem="no such file or folder"))
    return _mark_clashes(jobs)


def plan_file(source: Path, root: Path | None, output_dir: Path | None, random_names: bool,
              kind: Kind | None = None) -> Job:
    """The job for the file at `source` (found under the folder `root`, or given by name if None).

    Its kind and the format of its copy come from its name and, for photos and files whose name says
    nothing, its first bytes, read once here. A file that is not read claims no output name, so it
    never blocks a photo of the same name."""
    sniffed = sniff_format(source) if kind_of(source) in (Kind.PHOTO, Kind.OTHER) else None
    kind = kind or kind_of(source, sniffed)
    if kind not in READ_KINDS:
        return Job(source, source, kind, problem=NOT_READ_KINDS[kind])
    output = VIDEO_OUTPUT if kind is Kind.VIDEO else photo_output(source, sniffed).name
    return Job(source, _destination(source, root, output_dir, random_names, extension_of(output)), kind, output)


def _destination(source: Path, root: Path | None, output_dir: Path | None, random_names: bool,
                 extension: str) -> Path:
    if random_names:
        folder = output_dir if output_dir is not None else source.parent
        return folder / (random_stem(source) + extension)
    name = source.stem + OUTPUT_TAG + extension
    if output_dir is None:
        return source.parent / name
    relative = source.parent.relative_to(root) if root is not None else Path()
    return output_dir / relative / name


def _files_in(folder: Path, output_dir: Path | None) -> Iterator[tuple[Path, str | None]]:
    """(path, None) for each file under `folder` that the tool did not write itself; (path,
    problem) for each folder that cannot be searched, so no photo is left out silently. Links to
    folders are reported, not followed: they can loop, and outputs beside the photos would land
    outside the folder given. So are links to files outside it (see `leads_outside`)."""
    skip = output_dir.resolve() if output_dir is not None and output_dir.exists() else None
    unreadable: list[OSError] = []
    for root, dirs, files in os.walk(folder, onerror=unreadable.append):
        yield from ((Path(error.filename), _folder_problem(error)) for error in unreadable)
        unreadable.clear()
        if skip is not None and Path(root).resolve() == skip:
            dirs[:] = []
            continue
        dirs.sort()
        for name in [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            dirs.remove(name)
            yield Path(root, name), "is a link to a folder, which is not followed; give that folder itself to include it"
        for name in sorted(files):
            path = Path(root, name)
            if is_our_output(path):
                continue
            if leads_outside(path, folder):
                yield path, ("is a link to a file outside the folder given, which is not followed; "
                             "give that file itself to include it")
            else:
                yield path, None
    yield from ((Path(error.filename), _folder_problem(error)) for error in unreadable)


def leads_outside(path: Path, folder: Path) -> bool:
    """Whether `path` is a link whose target, followed to the end, lies outside `folder`.

    A folder from someone else (an archive, a shared drive, a hot folder others drop files into) may
    link to a photo of yours elsewhere: followed, its anonymised copy would land among the copies
    you post. Links inside the folder bring in nothing that is not there already."""
    if not os.path.islink(path):
        return False
    inside = os.path.realpath(folder)
    try:
        return os.path.commonpath([os.path.realpath(path), inside]) != inside
    except ValueError:  # another drive (Windows)
        return True


def own_copies_in(paths: Iterable[str | Path]) -> int:
    """How many files in the folders among `paths` are copies this tool made (never taken as inputs)."""
    return sum(is_our_output(Path(root, name)) and not name.startswith(".blur-")
               for given in paths if os.path.isdir(given) for root, _, names in os.walk(given) for name in names)


def _folder_problem(error: OSError) -> str:
    return f"cannot search this folder ({error.strerror or error}); its photos were not anonymised"


def is_our_output(path: Path) -> bool:
    """Whether `path` names a file this tool writes: a copy (named or random), a temporary, its state."""
    if path.name.startswith(".blur-"):
        return True
    return kind_of(path) in READ_KINDS and (path.stem.endswith(OUTPUT_TAG) or is_random_output(path))


def _mark_clashes(jobs: list[Job]) -> list[Job]:
    """Fail jobs whose output would be another job's input or output, rather than overwrite it."""
    sources = {os.path.abspath(job.source) for job in jobs}
    claimed: dict[str, Path] = {}  # output name -> the input that writes it
    checked = []
    for job in jobs:
        target = os.path.abspath(job.destination)
        if job.problem is None and target in sources:
            job = dataclasses.replace(job, problem="its output name is another input's name; nothing was written")
        elif job.problem is None and target in claimed:
            job = dataclasses.replace(job, problem=f"another input ({os.fsdecode(claimed[target])}) writes the same "
                                                   f"output name, {job.destination.name}; nothing was written: "
                                                   "rename one of them")
        claimed.setdefault(target, job.source)
        checked.append(job)
    return checked
