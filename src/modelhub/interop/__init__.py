"""Models in and out of other platforms' layouts: MLflow model directories, Hugging Face
folders and ONNX files.

Import reads a foreign layout without running it and answers an `ImportPlan`: which
files make the version (laid out the way modelhub's own runtimes read them) and what
the layout said about the model (signature, requirements, license, card). The
registry then inspects and stores those files like any other registration.

Export writes a version in a foreign layout into a folder (`write_export`), which a
transport may send on as a tar stream (`tar_stream`).
"""

from __future__ import annotations

from enum import StrEnum


class ImportFormat(StrEnum):
    MLFLOW = "mlflow"
    HUGGINGFACE = "huggingface"
    ONNX = "onnx"


class ExportFormat(StrEnum):
    MLFLOW = "mlflow"
    HUGGINGFACE = "huggingface"
    ONNX = "onnx"
