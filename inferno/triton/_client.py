"""The one module that talks to Triton Inference Server (through ``tritonclient``, HTTP or gRPC).

Everything else sees :class:`TritonClient`'s small async surface — model metadata, one
inference, the model's statistics — and the typed errors below:

- :class:`TritonUnavailable`: no connection, a timeout, or the server answering "unavailable".
- :class:`TritonModelError`: the model is unknown, not ready, or its metadata is unusable.
- :class:`TritonRequestError`: the server refused a request (an inference or a statistics call),
  with Triton's message.

URLs: ``host:port``, ``http://host:port``, ``https://host:port`` or ``grpc://host:port``; the
scheme chooses the protocol (default HTTP). ``headers`` go with every call (for example
``triton-access-token`` for a server started with restricted APIs, or an auth proxy's token).
Over gRPC Triton reads a restricted API's header with the prefix ``triton-grpc-protocol-``
(``triton-grpc-protocol-triton-access-token``): a ``triton-*`` header given without it is sent
both ways, so one ``--header`` works for either protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import tritonclient.grpc.aio as grpcclient
import tritonclient.http.aio as httpclient
from numpy.typing import NDArray
from tritonclient.utils import InferenceServerException, np_to_triton_dtype

from ..errors import InfernoError
from .stats import ModelStatistics, parse_statistics

__all__ = [
    "ModelInfo",
    "Protocol",
    "TensorSpec",
    "TritonClient",
    "TritonError",
    "TritonModelError",
    "TritonRequestError",
    "TritonUnavailable",
    "parse_url",
]

logger = logging.getLogger(__name__)

Protocol = Literal["http", "grpc"]
#: Triton's gRPC front end reads the header of a restricted API with this prefix
GRPC_PREFIX = "triton-grpc-protocol-"


class TritonError(InfernoError):
    """Triton could not do what was asked. ``url`` is the server, ``model`` the model (if any)."""

    def __init__(self, message: str, *, url: str = "", model: str = "") -> None:
        self.url = url
        self.model = model
        super().__init__(message)


class TritonUnavailable(TritonError):
    """No connection, a timeout, or the server says it is unavailable."""


class TritonModelError(TritonError):
    """The model is unknown, not ready, or its metadata cannot be used."""


class TritonRequestError(TritonError):
    """The server refused a request; ``status`` is Triton's status code (text) when it gave one."""

    def __init__(self, message: str, *, url: str = "", model: str = "", status: str = "") -> None:
        self.status = status
        super().__init__(message, url=url, model=model)


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output of a model: name, Triton datatype (``FP32``, ``BYTES``...) and shape
    without the batch dimension (``-1``: variable)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A model's metadata and the part of its configuration a client needs."""

    name: str
    versions: tuple[str, ...]
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int  # 0: the model does not batch (shapes are full shapes)
    platform: str = ""
    backend: str = ""
    decoupled: bool = False
    dynamic_batching: bool = False
    queue_delay_us: int = 0  # dynamic_batching.max_queue_delay_microseconds


def parse_url(url: str) -> tuple[Protocol, str, bool]:
    """(protocol, ``host:port``, TLS) from a URL; a bare ``host:port`` is HTTP."""
    text = url.strip()
    if not text:
        raise TritonError("empty Triton URL")
    if "://" not in text:
        return "http", text.rstrip("/"), False
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https", "grpc", "grpcs") or not parts.netloc:
        raise TritonError(
            f"unsupported Triton URL {url!r}: expected host:port, http://, https://, grpc:// "
            "or grpcs://"
        )
    protocol: Protocol = "grpc" if parts.scheme.startswith("grpc") else "http"
    return protocol, parts.netloc, parts.scheme in ("https", "grpcs")


def _message(exc: InferenceServerException) -> str:
    return str(exc.message() or exc)


class TritonClient:
    """Async calls to one Triton server. ``connections`` caps the HTTP connections in flight
    (an open-loop generator needs many); ``timeout`` is per call, in seconds."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        connections: int = 1024,
    ) -> None:
        self.protocol, self.address, tls = parse_url(url)
        self.url = (
            f"{'grpc' if self.protocol == 'grpc' else 'http'}{'s' if tls else ''}://{self.address}"
        )
        self.headers = dict(headers or {})
        if self.protocol == "grpc":
            for key, value in list(self.headers.items()):
                if key.lower().startswith("triton-") and not key.lower().startswith(GRPC_PREFIX):
                    self.headers.setdefault(GRPC_PREFIX + key, value)
        self.timeout = timeout
        self._grpc: grpcclient.InferenceServerClient | None = None
        self._http: httpclient.InferenceServerClient | None = None
        if self.protocol == "grpc":
            self._grpc = grpcclient.InferenceServerClient(self.address, ssl=tls)
        else:
            self._http = httpclient.InferenceServerClient(
                self.address, conn_limit=connections, conn_timeout=timeout, ssl=tls
            )

    async def close(self) -> None:
        if self._grpc is not None:
            await self._grpc.close()
        if self._http is not None:
            await self._http.close()

    async def __aenter__(self) -> TritonClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- errors -----------------------------------------------------------------------------

    def _unavailable(self, exc: BaseException, model: str = "") -> TritonUnavailable:
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return TritonUnavailable(
            f"cannot reach Triton at {self.url}: {what}", url=self.url, model=model
        )

    def _translate(self, exc: BaseException, model: str, action: str) -> TritonError:
        if isinstance(exc, InferenceServerException):
            status = str(exc.status() or "")
            text = _message(exc)
            restricted = "restricted" in text.lower() or "expecting header" in text.lower()
            if ("UNAVAILABLE" in status or "DEADLINE" in status) and not restricted:
                return self._unavailable(exc, model)
            return TritonRequestError(
                f"Triton at {self.url} refused {action}: {text}",
                url=self.url,
                model=model,
                status=status,
            )
        if isinstance(exc, asyncio.TimeoutError | OSError) or type(exc).__module__.startswith(
            ("aiohttp", "grpc")
        ):
            return self._unavailable(exc, model)
        raise exc

    # --- calls ------------------------------------------------------------------------------

    async def server_ready(self) -> bool:
        """True when the server says it is ready; False when it is unreachable or not ready."""
        try:
            if self._grpc is not None:
                return bool(await self._grpc.is_server_ready(headers=self.headers))
            assert self._http is not None
            return bool(await self._http.is_server_ready(headers=self.headers))
        except Exception as exc:
            logger.debug("Triton at %s not ready: %s", self.url, exc)
            return False

    async def model_info(self, model: str) -> ModelInfo:
        """The model's metadata and batching configuration (TritonModelError if unknown)."""
        try:
            if self._grpc is not None:
                meta = await self._grpc.get_model_metadata(
                    model, headers=self.headers, as_json=True
                )
                config = await self._grpc.get_model_config(
                    model, headers=self.headers, as_json=True
                )
                config = config.get("config", config)
            else:
                assert self._http is not None
                meta = await self._http.get_model_metadata(model, headers=self.headers)
                config = await self._http.get_model_config(model, headers=self.headers)
        except Exception as exc:
            err = self._translate(exc, model, f"the metadata of model {model!r}")
            if isinstance(err, TritonRequestError):
                raise TritonModelError(
                    f"model {model!r} is not available on Triton at {self.url}: "
                    f"{err.args[0].split(': ', 1)[-1]}",
                    url=self.url,
                    model=model,
                ) from None
            raise err from None
        return model_info_from_json(meta, config, url=self.url)

    async def infer(self, model: str, inputs: Mapping[str, NDArray[Any]]) -> None:
        """Run one inference request (the arrays already carry the batch dimension)."""
        try:
            if self._grpc is not None:
                g_inputs = [_tensor(grpcclient.InferInput, n, a) for n, a in inputs.items()]
                await self._grpc.infer(
                    model, g_inputs, headers=self.headers, client_timeout=self.timeout
                )
            else:
                assert self._http is not None
                h_inputs = [_tensor(httpclient.InferInput, n, a) for n, a in inputs.items()]
                await self._http.infer(model, h_inputs, headers=self.headers)
        except Exception as exc:
            raise self._translate(exc, model, "an inference request") from None

    async def statistics(self, model: str) -> ModelStatistics:
        """The model's cumulative statistics (counts and times since the server started)."""
        try:
            if self._grpc is not None:
                body = await self._grpc.get_inference_statistics(
                    model, headers=self.headers, as_json=True
                )
            else:
                assert self._http is not None
                body = await self._http.get_inference_statistics(model, headers=self.headers)
        except Exception as exc:
            raise self._translate(exc, model, f"the statistics of model {model!r}") from None
        return parse_statistics(body, model, source=self.url)


_NUMPY_TYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


def numpy_type(datatype: str) -> Any:
    """The numpy type of a Triton datatype (TritonModelError for one a client cannot make)."""
    try:
        return _NUMPY_TYPES[datatype]
    except KeyError:
        raise TritonModelError(
            f"datatype {datatype!r} is not supported (supported: {', '.join(_NUMPY_TYPES)})"
        ) from None


def _tensor(factory: Any, name: str, array: NDArray[Any]) -> Any:
    tensor = factory(name, list(array.shape), np_to_triton_dtype(array.dtype))
    tensor.set_data_from_numpy(array)
    return tensor


def _specs(rows: Any, what: str, model: str, url: str) -> tuple[TensorSpec, ...]:
    if not isinstance(rows, Sequence):
        raise TritonModelError(f"model {model!r}: no {what} in its metadata", url=url, model=model)
    out = []
    for row in rows:
        try:
            out.append(
                TensorSpec(
                    str(row["name"]), str(row["datatype"]), tuple(int(d) for d in row["shape"])
                )
            )
        except (KeyError, TypeError, ValueError):
            raise TritonModelError(
                f"model {model!r}: malformed {what} entry {row!r} in its metadata",
                url=url,
                model=model,
            ) from None
    return tuple(out)


def model_info_from_json(
    meta: Mapping[str, Any], config: Mapping[str, Any], *, url: str = ""
) -> ModelInfo:
    """A :class:`ModelInfo` from Triton's metadata and config answers (HTTP JSON or gRPC as
    JSON). The metadata's shapes include the batch dimension when the model batches; it is
    removed here."""
    name = str(meta.get("name", ""))
    max_batch = int(config.get("max_batch_size", config.get("maxBatchSize", 0)) or 0)
    inputs = _specs(meta.get("inputs"), "inputs", name, url)
    outputs = _specs(meta.get("outputs", []), "outputs", name, url)
    if max_batch > 0:
        inputs = tuple(TensorSpec(t.name, t.datatype, t.shape[1:]) for t in inputs)
        outputs = tuple(TensorSpec(t.name, t.datatype, t.shape[1:]) for t in outputs)
    policy = config.get("model_transaction_policy") or config.get("modelTransactionPolicy") or {}
    batching = config.get("dynamic_batching") or config.get("dynamicBatching") or {}
    delay = batching.get("max_queue_delay_microseconds", batching.get("maxQueueDelayMicroseconds"))
    return ModelInfo(
        name=name,
        versions=tuple(str(v) for v in meta.get("versions") or ()),
        inputs=inputs,
        outputs=outputs,
        max_batch_size=max_batch,
        platform=str(meta.get("platform", "")),
        backend=str(config.get("backend", "")),
        decoupled=bool(policy.get("decoupled", False)),
        dynamic_batching="dynamic_batching" in config or "dynamicBatching" in config,
        queue_delay_us=int(delay or 0),
    )
