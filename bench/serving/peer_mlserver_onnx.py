"""MLServer custom runtime for the pool benchmark's small ONNX models; imported by
MLServer in its own venv (bench/.cache/venv-mlserver-pool).

Each model folder's model-settings.json names `peer_mlserver_onnx.OnnxRuntime` and
gives `parameters.uri` = ./model.onnx. It loads the graph with ONNX Runtime (one
thread, CPU, as modelhub's ONNX runtime does) and answers Open Inference Protocol V2
requests: the first input as a float32 array, the graph's first output as "y".
"""

from __future__ import annotations

from typing import Any

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class OnnxRuntime(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        path = await get_model_uri(self._settings)
        self._session: Any = ort.InferenceSession(
            path, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0]).astype("float32", copy=False)
        (y,) = self._session.run(None, {self._input: x})
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("y", y)],
        )
