"""MLServer custom runtime for model A; imported by MLServer in the MLServer peer venv.

model-settings.json names it `peer_mlserver_runtime.ModelARuntime` and gives the
safetensors file as `parameters.uri`. It rebuilds the Sequential (32 -> 64 -> ReLU ->
10), loads the weights (no pickle), runs with one torch thread, and answers Open
Inference Protocol V2 requests: the first input, decoded as a numpy array of shape
[batch, 32], gives one FP32 output "logits" of shape [batch, 10]. With adaptive
batching on, MLServer concatenates queued requests along the first axis before
`predict` and splits the output again afterwards.
"""

from __future__ import annotations

from typing import Any

from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri


class ModelARuntime(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        import torch
        from safetensors.torch import load_file
        from torch import nn

        torch.set_num_threads(1)
        path = await get_model_uri(self._settings)
        module = nn.Sequential(nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 10))
        module.load_state_dict(load_file(path))
        self._module: Any = module.eval()
        self._torch: Any = torch
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        torch = self._torch
        x = NumpyCodec.decode_input(payload.inputs[0]).astype("float32", copy=False)
        with torch.inference_mode():
            y = self._module(torch.from_numpy(x.reshape(-1, 32))).numpy()
        return InferenceResponse(
            model_name=self.name,
            model_version=self.version,
            outputs=[NumpyCodec.encode_output("logits", y)],
        )
