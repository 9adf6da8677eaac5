"""Coverage-guided fuzzing of the safetensors reader (header length, JSON header, offsets).

    python fuzz/fuzz_safetensors.py fuzz/corpus/safetensors/ -max_total_time=60

Each input is a whole .safetensors file. Any exception other than a ModelhubError is a
crash: the reader must answer sensibly or refuse with the project's own error.
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

WORKDIR = Path(tempfile.mkdtemp(prefix="fuzz-safetensors-"))


def test_one_input(data: bytes) -> None:
    path = WORKDIR / "model.safetensors"
    path.write_bytes(data)
    with contextlib.suppress(ModelhubError):
        inspect_model(path)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
