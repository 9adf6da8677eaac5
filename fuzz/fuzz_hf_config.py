"""Coverage-guided fuzzing of Hugging Face folder inspection: config.json, modules.json,
the shard index and a pooling config, beside a small valid model.safetensors.

    python fuzz/fuzz_hf_config.py fuzz/corpus/hf_config/ -max_total_time=60

An input is up to four JSON documents separated by a NUL byte, in that order; a
missing or empty part leaves that file out. Any exception other than a ModelhubError
is a crash.
"""

from __future__ import annotations

import contextlib
import struct
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["modelhub"]):
    from modelhub.errors import ModelhubError
    from modelhub.inspect import inspect_model

FOLDER = Path(tempfile.mkdtemp(prefix="fuzz-hf-")) / "model"
(FOLDER / "1_Pooling").mkdir(parents=True)
_HEADER = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
(FOLDER / "model.safetensors").write_bytes(struct.pack("<Q", len(_HEADER)) + _HEADER + bytes(8))
FILES = ("config.json", "modules.json", "model.safetensors.index.json", "1_Pooling/config.json")


def test_one_input(data: bytes) -> None:
    parts = data.split(b"\x00", len(FILES) - 1)
    for name, part in zip(FILES, parts + [b""] * (len(FILES) - len(parts)), strict=True):
        path = FOLDER / name
        if part:
            path.write_bytes(part)
        else:
            path.unlink(missing_ok=True)
    if not (FOLDER / "config.json").exists():
        return
    with contextlib.suppress(ModelhubError):
        inspect_model(FOLDER)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
