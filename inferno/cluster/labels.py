"""The labels and annotations Inferno reads and writes on managed Deployments.

Labels are the Go original's (``inferno.server.*``); per-server bounds and mode are annotations.
"""

from __future__ import annotations

MANAGED = "inferno.server.managed"  # "true" opts a Deployment in
SERVER_NAME = "inferno.server.name"
MODEL = "inferno.server.model"
SERVICE_CLASS = "inferno.server.class"
ALLOC_ACCELERATOR = "inferno.server.allocation.accelerator"
ALLOC_MAX_BATCH = "inferno.server.allocation.maxbatchsize"
# the load fallback when there is no Prometheus (the original's label names)
LOAD_RPM = "inferno.server.load.rpm"
LOAD_IN_TOKENS = "inferno.server.load.intokens"
LOAD_OUT_TOKENS = "inferno.server.load.outtokens"
LOAD_NUM_TOKENS = "inferno.server.load.numtokens"  # the oldest: one length (G0)

# annotations
MIN_REPLICAS = "inferno.server/min-replicas"
MAX_REPLICAS = "inferno.server/max-replicas"
MODE = "inferno.server/mode"  # "auto" (default) or "recommend"
CONTAINER = "inferno.server/container"  # the serving container (default: the first)
# the most output tokens a request gets (the server's max_tokens or what its context leaves):
# the accurate model's outTokensMax (default: no cap)
MAX_OUTPUT_TOKENS = "inferno.server/max-output-tokens"
#: its largest value: the data's bound on a token count (inferno.data.limits.MAX_TOKENS, a
#: sibling layer; tests/cluster/test_pure.py keeps the two equal)
MAX_OUTPUT_TOKENS_LIMIT = 10_000_000

MANAGED_SELECTOR = f"{MANAGED}=true"
DEFAULT_CLASS = "Free"

# the model's name in the server's metrics (Triton's ``model`` label), when it differs from the
# inferno.server.model label (default: that label's value)
TRITON_MODEL = "inferno.server/triton-model"

# written by the actuator on every Deployment it patches: "<sequence>.<cycle id>" of the cycle
# whose plan the patch enacted (the sequence orders plans: an older plan is refused)
CYCLE = "inferno.server/cycle"

# the ServiceClass custom resource (manifests/10-crd-serviceclass.yaml)
SERVICE_CLASS_GROUP = "inferno.ai"
SERVICE_CLASS_VERSION = "v1alpha1"
SERVICE_CLASS_PLURAL = "serviceclasses"
