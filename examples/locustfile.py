"""Locust users for a Triton model, for those who prefer Locust to ``inferno load``.

    pip install locust
    locust -f examples/locustfile.py --host http://localhost:8000 \
        --users 50 --spawn-rate 10 --headless --run-time 60s

Set ``TRITON_MODEL`` (default ``sleep``), ``TRITON_INPUT`` (``x``), ``TRITON_DATATYPE``
(``FP32``), ``TRITON_SHAPE`` (``1,1``: batch dimension first) and the mean think time
``THINK_S`` (default 1 s). Note that Locust is closed-loop: each user waits for its answer, so a
slow server receives less load; ``inferno load`` is open-loop (docs/triton.md).
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task  # type: ignore[import-not-found]

MODEL = os.environ.get("TRITON_MODEL", "sleep")
INPUT = os.environ.get("TRITON_INPUT", "x")
DATATYPE = os.environ.get("TRITON_DATATYPE", "FP32")
SHAPE = [int(d) for d in os.environ.get("TRITON_SHAPE", "1,1").split(",")]
THINK = float(os.environ.get("THINK_S", "1.0"))


def _count(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


class TritonUser(HttpUser):  # type: ignore[misc]
    wait_time = between(0.0, 2 * THINK)

    @task
    def infer(self) -> None:
        body = {
            "inputs": [
                {
                    "name": INPUT,
                    "datatype": DATATYPE,
                    "shape": SHAPE,
                    "data": [random.random() for _ in range(_count(SHAPE))],
                }
            ]
        }
        self.client.post(f"/v2/models/{MODEL}/infer", json=body, name=f"infer {MODEL}")
