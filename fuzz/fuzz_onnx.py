"""Coverage-guided fuzzing of the ONNX reader (protobuf, checker, external data, strings).

    python fuzz/fuzz_onnx.py fuzz/corpus/onnx/ -max_total_time=60

Each input is a whole .onnx file, inspected in a folder of its own beside a 64-byte
`weights.bin` its external data may name. Any exception other than a ModelhubError
is a crash.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["modelhub"]):
    from modelhub.errors import ModelhubError
    from modelhub.inspect import inspect_model

WORKDIR = Path(tempfile.mkdtemp(prefix="fuzz-onnx-"))
(WORKDIR / "weights.bin").write_bytes(bytes(64))


def test_one_input(data: bytes) -> None:
    path = WORKDIR / "model.onnx"
    path.write_bytes(data)
    with contextlib.suppress(ModelhubError):
        inspect_model(path)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
