"""A Triton server (pytriton, CPU) with one model, ``sleep``, whose batch of b takes α + β·b ms.

Runs in its own virtual environment (pytriton needs numpy < 2): ``make live-deps`` creates
``.venv-triton``. Needs ``LD_LIBRARY_PATH`` to hold the Python's own LIBDIR (sysconfig), or the
Python backend stub loads another libpython. Stops on SIGTERM/SIGINT (``triton.stop()``).
Prints ``READY`` on stdout when the model is loaded.

    python sleep_server.py --http-port P --grpc-port P --metrics-port P --alpha-ms 50 --beta-ms 5

``--instances C`` binds C callables: Triton runs C model instances, each sleeping its own batch
(sleeps do not contend, so C instances serve about C times as much).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time

import numpy as np
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig, TritonSecurityConfig

parser = argparse.ArgumentParser()
parser.add_argument("--http-port", type=int, required=True)
parser.add_argument("--grpc-port", type=int, required=True)
parser.add_argument("--metrics-port", type=int, required=True)
parser.add_argument("--alpha-ms", type=float, required=True)
parser.add_argument("--beta-ms", type=float, required=True)
parser.add_argument("--max-batch", type=int, default=16)
parser.add_argument("--max-queue-delay-us", type=int, default=0)
parser.add_argument("--instances", type=int, default=1, help="model instances (one callable each)")
parser.add_argument("--token", default=None, help="triton-access-token for the restricted APIs")
parser.add_argument("--workspace", default=None)
args = parser.parse_args()

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
log = logging.getLogger("sleep_server")


def _instance() -> object:
    @batch
    def infer(x: np.ndarray) -> dict[str, np.ndarray]:
        time.sleep((args.alpha_ms + args.beta_ms * x.shape[0]) / 1000.0)
        return {"y": x}

    return infer


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())

config = TritonConfig(
    http_address="127.0.0.1",
    http_port=args.http_port,
    grpc_address="127.0.0.1",
    grpc_port=args.grpc_port,
    metrics_address="127.0.0.1",
    metrics_port=args.metrics_port,
    allow_gpu_metrics=False,
    metrics_interval_ms=1000,
    exit_timeout_secs=5,
)
security = TritonSecurityConfig(access_token=args.token) if args.token else None
triton = Triton(config=config, workspace=args.workspace, security_config=security)
triton.bind(
    model_name="sleep",
    infer_func=[_instance() for _ in range(args.instances)] if args.instances > 1 else _instance(),
    inputs=[Tensor(name="x", dtype=np.float32, shape=(1,))],
    outputs=[Tensor(name="y", dtype=np.float32, shape=(1,))],
    config=ModelConfig(
        max_batch_size=args.max_batch,
        batcher=DynamicBatcher(max_queue_delay_microseconds=args.max_queue_delay_us),
    ),
    strict=True,
)
triton.run()
print("READY", flush=True)
try:
    while not stop.is_set() and triton.is_alive():
        stop.wait(0.5)
finally:
    triton.stop()
    log.info("stopped")
    sys.exit(0)
