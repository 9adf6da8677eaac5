"""The Ray engine: training attempts on a Ray cluster (`pip install 'modelhub[ray]'`).

- `executor`: `RayExecutor`, the scheduler's executor for runs with `engine: ray`;
- `factory`: `open_ray`, the `ray` entry of the executors' extension point;
- `actor`: the detached actor that runs one attempt's worker on the cluster;
- `connection`: this process's connection to the cluster, probed before `ray.init`;
- `train`: the Ray Train driver for distributed runs (`TorchTrainer`).

Nothing here imports Ray at module level: the server without the extra imports
this package, and `ray_missing()` says why the engine cannot be used.
"""

from modelhub.training.ray_engine.connection import ray_missing
from modelhub.training.ray_engine.executor import ClusterStatus, RayExecutor
from modelhub.training.ray_engine.factory import open_ray

__all__ = ["ClusterStatus", "RayExecutor", "open_ray", "ray_missing"]
