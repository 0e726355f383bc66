"""The Triton adapter's pure parts: URLs, metadata, statistics, request tensors; and its error
translation against a closed port."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest

from inferno.triton import (
    ModelStatistics,
    StatisticsError,
    TritonClient,
    TritonError,
    TritonModelError,
    TritonUnavailable,
    make_inputs,
    model_info_from_json,
    parse_statistics,
    parse_url,
)

META = {
    "name": "resnet",
    "versions": ["1"],
    "platform": "onnxruntime_onnx",
    "inputs": [
        {"name": "image", "datatype": "FP32", "shape": [-1, 3, -1, -1]},
        {"name": "ids", "datatype": "INT64", "shape": [-1, 4]},
        {"name": "text", "datatype": "BYTES", "shape": [-1, 1]},
    ],
    "outputs": [{"name": "probs", "datatype": "FP32", "shape": [-1, 1000]}],
}
CONFIG = {
    "name": "resnet",
    "max_batch_size": 8,
    "backend": "onnxruntime",
    "dynamic_batching": {"max_queue_delay_microseconds": 1500},
}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("localhost:8000", ("http", "localhost:8000", False)),
        ("http://h:1/", ("http", "h:1", False)),
        ("https://h:443", ("http", "h:443", True)),
        ("grpc://h:8001", ("grpc", "h:8001", False)),
        ("grpcs://h:8001", ("grpc", "h:8001", True)),
    ],
)
def test_parse_url(url: str, expected: tuple[str, str, bool]) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url", ["", "ftp://h:1", "http://"])
def test_parse_url_rejects(url: str) -> None:
    with pytest.raises(TritonError):
        parse_url(url)


def test_model_info_drops_the_batch_dimension_and_reads_batching() -> None:
    info = model_info_from_json(META, CONFIG)
    assert info.max_batch_size == 8
    assert [t.shape for t in info.inputs] == [(3, -1, -1), (4,), (1,)]
    assert info.outputs[0].shape == (1000,)
    assert info.dynamic_batching and info.queue_delay_us == 1500
    flat = model_info_from_json(META, {"max_batch_size": 0})
    assert flat.inputs[0].shape == (-1, 3, -1, -1) and not flat.dynamic_batching


def test_model_info_malformed_names_the_entry() -> None:
    with pytest.raises(TritonModelError, match="malformed inputs"):
        model_info_from_json({"name": "m", "inputs": [{"name": "x"}]}, {})


def test_make_inputs_shapes_types_and_batch() -> None:
    info = model_info_from_json(META, CONFIG)
    body = make_inputs(info, batch=4, shapes={"image": (3, 8, 8)})
    assert body["image"].shape == (4, 3, 8, 8) and body["image"].dtype == np.float32
    assert body["ids"].shape == (4, 4) and body["ids"].dtype == np.int64
    assert body["text"].dtype == np.object_ and body["text"][0, 0] == b"inferno"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch": 9}, "exceeds its max_batch_size 8"),
        ({"batch": 0}, "batch must be ≥ 1"),
        ({"shapes": {"nope": (1,)}}, "has no input 'nope'"),
        ({"shapes": {"ids": (5,)}}, r"has shape \[4\]"),
    ],
)
def test_make_inputs_rejects(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(TritonModelError, match=match):
        make_inputs(model_info_from_json(META, CONFIG), **kwargs)  # type: ignore[arg-type]


def _stats(success: int, execs: int, batches: dict[int, tuple[int, int]]) -> dict[str, object]:
    return {
        "model_stats": [
            {
                "name": "m",
                "version": "1",
                "inference_count": sum(b * c for b, (c, _) in batches.items()),
                "execution_count": execs,
                "inference_stats": {
                    "success": {"count": success, "ns": 0},
                    "fail": {"count": 1, "ns": 0},
                    "queue": {"count": success, "ns": success * 2_000_000},
                    "compute_infer": {"count": success, "ns": success * 10_000_000},
                },
                "batch_stats": [
                    {"batch_size": b, "compute_infer": {"count": str(c), "ns": str(ns)}}
                    for b, (c, ns) in batches.items()
                ],
            },
            {"name": "other", "inference_stats": {}},
        ]
    }


def test_statistics_parse_and_difference() -> None:
    before = parse_statistics(_stats(10, 8, {1: (6, 60_000_000), 2: (2, 30_000_000)}), "m")
    after = parse_statistics(_stats(30, 16, {1: (10, 100_000_000), 4: (6, 150_000_000)}), "m")
    delta = after.minus(before)
    assert delta.success == 20 and delta.execution_count == 8
    assert set(delta.batches) == {1, 4}  # size 2 did not run again
    assert delta.batches[1].count == 4 and delta.batches[1].mean_ms() == pytest.approx(10.0)
    assert delta.batches[4].mean_ms() == pytest.approx(25.0)
    assert after.queue_ms == pytest.approx(2.0) and after.compute_ms == pytest.approx(10.0)
    assert ModelStatistics("x").avg_batch == 0.0


def test_statistics_errors_name_the_problem() -> None:
    with pytest.raises(StatisticsError, match="no entry for model 'zz'"):
        parse_statistics(_stats(1, 1, {}), "zz")
    with pytest.raises(StatisticsError, match="model_stats"):
        parse_statistics({}, "m")
    bad = _stats(1, 1, {})
    bad["model_stats"][0]["execution_count"] = "many"  # type: ignore[index]
    with pytest.raises(StatisticsError, match="execution_count"):
        parse_statistics(bad, "m")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_unreachable_server_is_unavailable(scheme: str) -> None:
    port = _closed_port()

    async def go() -> None:
        async with TritonClient(f"{scheme}://127.0.0.1:{port}", timeout=2.0) as client:
            assert await client.server_ready() is False
            with pytest.raises(TritonUnavailable, match=f"127.0.0.1:{port}"):
                await client.model_info("m")
            with pytest.raises(TritonUnavailable):
                await client.infer("m", {"x": np.zeros((1, 1), np.float32)})

    asyncio.run(go())
