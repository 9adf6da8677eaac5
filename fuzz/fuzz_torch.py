"""Coverage-guided fuzzing of the PyTorch readers: torch.save zips (weights-only load,
zip entries, the object walk) and pickles (the static scanner).

    python fuzz/fuzz_torch.py fuzz/corpus/torch/ -max_total_time=60

The first input byte picks the file name (.pt, .bin, .pkl, .joblib); the rest is the
file. Any exception other than a ModelhubError is a crash.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["modelhub", "picklescan"]):
    from modelhub.errors import ModelhubError
    from modelhub.inspect import inspect_model

WORKDIR = Path(tempfile.mkdtemp(prefix="fuzz-torch-"))
SUFFIXES = (".pt", ".bin", ".pkl", ".joblib")
logging.getLogger("picklescan").setLevel(logging.CRITICAL)  # it logs every bad pickle


def test_one_input(data: bytes) -> None:
    if not data:
        return
    path = WORKDIR / f"model{SUFFIXES[data[0] % len(SUFFIXES)]}"
    path.write_bytes(data[1:])
    try:
        inspect_model(path)
    except ModelhubError:
        pass
    finally:
        path.unlink()


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
