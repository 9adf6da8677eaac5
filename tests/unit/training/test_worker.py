from __future__ import annotations

import subprocess
import sys

import torch

from modelhub.training.worker import warm_up

CHECK_IN_A_FRESH_PROCESS = """
import sys
from modelhub.training.worker import warm_up
assert "torch._dynamo" not in sys.modules
warm_up()
assert "torch._dynamo" in sys.modules
"""


def test_warm_up_imports_what_the_first_optimizer_would() -> None:
    # The first torch optimizer built imports torch._dynamo, over a second on a
    # small machine: a warm worker must have paid that before its job arrives.
    subprocess.run([sys.executable, "-c", CHECK_IN_A_FRESH_PROCESS], check=True)


def test_warm_up_leaves_the_rng_state_as_it_found_it() -> None:
    before = torch.get_rng_state()
    warm_up()
    assert torch.equal(torch.get_rng_state(), before)
