"""A rough serving-resource estimate from parameter count and precision."""

from __future__ import annotations

from modelhub.domain.enums import Precision
from modelhub.domain.records import ResourceEstimate
from modelhub.inspect.tensors import BYTES_PER_PARAM

MiB = 1024**2
GiB = 1024**3
OVERHEAD_FACTOR = 1.2  # activations, buffers, allocator slack on top of the weights
RUNTIME_BYTES = 200 * MiB  # interpreter, runtime libraries, server process

DEVICE_CLASSES: list[tuple[int, str]] = [
    (500 * MiB, "cpu-small"),
    (4 * GiB, "cpu-large"),
    (16 * GiB, "gpu-16gb"),
    (40 * GiB, "gpu-40gb"),
    (80 * GiB, "gpu-80gb"),
]


def estimate(
    parameters: int | None, precision: Precision, file_bytes: int | None = None
) -> ResourceEstimate:
    """Memory to serve the model and the smallest device class that holds it.

    Without a parameter count (pickles are never loaded), the weight bytes are taken
    to be the file size.
    """
    if parameters is not None:
        bytes_per_param = BYTES_PER_PARAM[precision]
        weight_bytes = int(parameters * bytes_per_param)
        basis = f"{parameters:,} parameters x {bytes_per_param:g} bytes ({precision.value})"
    else:
        weight_bytes = file_bytes or 0
        basis = f"file size {weight_bytes:,} bytes (parameter count unknown)"
    memory = int(weight_bytes * OVERHEAD_FACTOR) + RUNTIME_BYTES
    device_class = next((name for limit, name in DEVICE_CLASSES if memory < limit), "multi-gpu")
    notes = (
        f"{basis} x {OVERHEAD_FACTOR} overhead + {RUNTIME_BYTES // MiB} MiB runtime "
        f"= {memory / GiB:.2f} GiB -> {device_class}"
    )
    return ResourceEstimate(memory_bytes=memory, device_class=device_class, notes=notes)
