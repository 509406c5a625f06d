"""Inference engines: run an ONNX model on a batch of images, on the CPU.

OpenVINO is the default: on CenterFace it is about 1.3 times quicker than OpenCV's dnn module in
32-bit floats, and about 2.8 times quicker where the CPU computes in bfloat16 (AVX-512 BF16 or AMX),
which OpenVINO then uses by itself (benchmarks/engines.py). It compiles the model once, for any
input size. OpenCV's dnn is the fallback where no OpenVINO wheel installs.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Protocol

import numpy as np

from ..errors import DetectorUnavailable, InvalidSetting

PRECISION_VARIABLE = "BLUR_PRECISION"
PRECISIONS = ("auto", "f32")
"""What BLUR_PRECISION may ask for: `auto` (the default) lets the engine compute in the quickest
precision the CPU has (bfloat16 with AVX-512 BF16 or AMX), `f32` in 32-bit floats whatever the CPU,
as on most laptops: benchmarks use it to stand in for them."""

_KERNELS_KEPT = 100
"""Kernels OpenVINO keeps compiled for the window sizes it has seen (its default, 5000, lets the
memory grow with every photo size in a batch: 928 MB after wider-native-dev's 225 photos)."""

_SHAPES_KEPT = 4
"""OpenCV 4 nets kept, one per window size: each holds the buffers of its own size."""


class Engine(Protocol):
    name: str
    precision: str

    def run(self, rgb: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for one H×W×3 uint8 image (its pixel values as the model's input)."""
        ...


class _PerShape:
    """Compiled models by input shape, least recently used dropped past `_SHAPES_KEPT`."""

    def __init__(self, compile_for: Callable[[tuple[int, ...]], object]):
        self._compile_for = compile_for
        self._by_shape: OrderedDict[tuple[int, ...], object] = OrderedDict()

    def __call__(self, shape: tuple[int, ...]):
        compiled = self._by_shape.pop(shape, None)
        if compiled is None:
            compiled = self._compile_for(shape)
        self._by_shape[shape] = compiled
        if len(self._by_shape) > _SHAPES_KEPT:
            self._by_shape.popitem(last=False)
        return compiled


def import_openvino():
    """OpenVINO without its usage telemetry.

    `import openvino` reports each import to Google Analytics from a background process, and
    writes a lasting client id to ~/intel, unless its `openvino_telemetry` package cannot be
    imported: then it falls back to a stub that sends nothing. This tool never talks to the network,
    so that package is unimportable while OpenVINO is first imported, and put back as it was once
    OpenVINO holds its stub: nothing else in the process is kept from importing it afterwards
    (tests/test_detect.py checks that no lookup is made and no id is written)."""
    if "openvino" in sys.modules:
        return sys.modules["openvino"]
    with _unimportable(_TELEMETRY):
        return importlib.import_module("openvino")


_TELEMETRY = ("openvino_telemetry", "openvino_telemetry.backend")


@contextmanager
def _unimportable(names: tuple[str, ...]) -> Iterator[None]:
    """While the block runs, `import NAME` raises ImportError for each of `names`; then each is as before."""
    before = {name: sys.modules.get(name, _ABSENT) for name in names}
    sys.modules.update(dict.fromkeys(names))  # None in sys.modules makes `import name` raise ImportError
    try:
        yield
    finally:
        for name, module in before.items():
            if module is _ABSENT:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


_ABSENT = object()


def requested_precision() -> str:
    """The precision the environment asks for (BLUR_PRECISION; `auto` when unset), or InvalidSetting."""
    value = os.environ.get(PRECISION_VARIABLE, "") or "auto"
    if value not in PRECISIONS:
        raise InvalidSetting(f"{PRECISION_VARIABLE} must be one of {', '.join(PRECISIONS)} "
                             f"(f32: 32-bit floats whatever the CPU), not {value!r}")
    return value


class OpenVinoEngine:
    name = "openvino"

    def __init__(self, model_path: Path, outputs: list[str], threads: int, precision: str = "auto"):
        openvino = import_openvino()
        from openvino.preprocess import PrePostProcessor

        core = openvino.Core()
        try:
            model = core.read_model(str(model_path))
            # only the outputs asked for: the others' layers are not computed
            model = openvino.Model([model.output(name) for name in outputs], model.get_parameters())
            model.reshape({model.inputs[0]: [1, 3, -1, -1]})  # any window size, one compiled model
            steps = PrePostProcessor(model)  # takes the uint8 pixels as they are: no float copy in Python
            steps.input().tensor().set_element_type(openvino.Type.u8).set_layout(openvino.Layout("NHWC"))
            steps.input().model().set_layout(openvino.Layout("NCHW"))
            config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads,
                      "CPU_RUNTIME_CACHE_CAPACITY": _KERNELS_KEPT}
            if precision != "auto":
                config["INFERENCE_PRECISION_HINT"] = precision
            compiled = core.compile_model(steps.build(), "CPU", config)
        except Exception as exc:  # OpenVINO raises plain RuntimeErrors for unreadable models
            raise DetectorUnavailable(f"the model at {model_path} cannot be loaded ({_first_line(exc)})") from None
        self._request = compiled.create_infer_request()
        self._outputs = [compiled.output(name) for name in outputs]
        self.precision = compiled.get_property("INFERENCE_PRECISION_HINT").to_string()  # bf16 where the CPU has it

    def run(self, rgb: np.ndarray) -> list[np.ndarray]:
        results = self._request.infer({0: rgb[None]})
        return [results[output] for output in self._outputs]


class OpenCvEngine:
    name = "opencv"
    precision = "f32"

    def __init__(self, model_path: Path, outputs: list[str], threads: int, precision: str = "auto"):
        """`threads` is not used: OpenCV's own setting (cv2.setNumThreads) applies. It always
        computes in 32-bit floats, whatever `precision` asks."""
        import cv2

        self._cv2 = cv2
        self._model = np.frombuffer(model_path.read_bytes(), np.uint8)
        self._outputs = outputs
        self._path = model_path
        # OpenCV 4 runs CenterFace right only at the first input size a net sees; later sizes give
        # wrong scores and boxes, so there each shape gets a net of its own. OpenCV 5 needs one.
        if int(cv2.__version__.split(".")[0]) >= 5:
            net = self._read()
            self._net_for = lambda shape: net
        else:
            self._net_for = _PerShape(lambda shape: self._read())
            self._net_for((1, 3, 32, 32))  # a model that cannot be loaded fails here, not on the first photo

    def _read(self):
        try:
            return self._cv2.dnn.readNetFromONNX(self._model)
        except self._cv2.error as exc:
            raise DetectorUnavailable(f"the model at {self._path} cannot be loaded ({_first_line(exc)})") from None

    def run(self, rgb: np.ndarray) -> list[np.ndarray]:
        blob = self._cv2.dnn.blobFromImage(rgb)
        net = self._net_for(blob.shape)
        net.setInput(blob)
        return list(net.forward(self._outputs))


ENGINES: dict[str, type] = {"openvino": OpenVinoEngine, "opencv": OpenCvEngine}


def available_engines() -> list[str]:
    """Engine names that can run here, best first."""
    names = []
    for name, load in (("openvino", import_openvino), ("opencv", lambda: importlib.import_module("cv2"))):
        try:
            load()
        except ImportError:
            continue
        names.append(name)
    return names


def load_engine(model_path: Path, outputs: list[str], name: str | None = None, threads: int | None = None,
                precision: str | None = None) -> Engine:
    """The engine `name` (default: the best available) for the model at `model_path`, computing in
    `precision` (one of PRECISIONS; default: what BLUR_PRECISION asks)."""
    precision = precision or requested_precision()
    if precision not in PRECISIONS:
        raise InvalidSetting(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    choices = available_engines()
    if name is None:
        if not choices:
            raise DetectorUnavailable("no inference engine is installed; reinstall this tool with pip")
        name = choices[0]
    elif name not in choices:
        raise DetectorUnavailable(
            f"the inference engine {name!r} is not installed here; choose one of: {', '.join(choices) or 'none'}"
        )
    return ENGINES[name](model_path, outputs, threads or os.cpu_count() or 1, precision)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
