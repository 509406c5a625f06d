"""A short fuzzing smoke run for CI; benchmarks/fuzz.py runs the same invariant for minutes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blur.decode import decode_photo
from blur.formats import find_metadata

import hostile

SEEDS = hostile.fuzz_seeds()

mutation = st.tuples(
    st.sampled_from(hostile.MUTATIONS),
    st.floats(0, 1),
    st.binary(min_size=1, max_size=16),
    st.sampled_from(range(len(SEEDS))),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(SEEDS))), st.lists(mutation, min_size=1, max_size=4))
def test_mutated_photos_are_anonymised_cleanly_or_refused_with_a_blur_error(seed, mutations):
    data = SEEDS[seed]
    for operation, where, payload, other in mutations:
        data = hostile.mutate(data, operation, where, payload, SEEDS[other])
    with hostile.deadline(20):
        out = hostile.decode_anonymise_encode(data)  # any exception but a BlurError fails here
    if out is not None:
        assert hostile.SECRET not in out


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_refused_or_decoded_never_crash(data):
    with hostile.deadline(20):
        out = hostile.decode_anonymise_encode(data)  # None: refused with a BlurError
    if out is not None:  # a fresh image that carries nothing else, and reads back
        assert find_metadata(out) == []
        assert decode_photo(out).pixels.size > 0


def test_decoding_damaged_files_prints_nothing():
    """Damaged TIFFs make libtiff and Pillow's logger print; the library must stay silent."""
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        import hostile
        from blur.errors import BlurError
        from blur.decode import decode_photo
        lzw = hostile.seeds()["tiff-lzw"][0]
        broken = [hostile.mutate(lzw, "flip", where / 20, bytes([0xA5] * 16)) for where in range(20)]
        broken.append(hostile.patch_tiff_tags(hostile.seeds()["tiff"][0], {277: 65283}))  # samples per pixel
        for data in broken:
            try:
                decode_photo(data)
            except BlurError:
                pass
        """
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(Path(__file__).parent)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0 and run.stderr == "" and run.stdout == ""
