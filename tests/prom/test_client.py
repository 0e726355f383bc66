"""PrometheusClient against a fake Prometheus: parsing, typed errors, auth, query parameters."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import certifi
import httpx
import pytest

from inferno.errors import InfernoError
from inferno.prom import (
    NoData,
    PrometheusClient,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailable,
)

from .fakes import NOW, URL, FakePrometheus

Q = 'sum by (namespace, model) (rate(nv_inference_request_success{model="m"}[60s]))'


def test_a_vector_is_parsed_into_samples() -> None:
    fake = FakePrometheus(
        {
            Q: [
                ({"namespace": "a", "model": "m"}, 12.5),
                ({"namespace": "b", "model": "m", "quantile": "0.9"}, 0.0),
            ]
        }
    )
    samples = fake.client().query(Q)
    assert [(dict(s.labels), s.timestamp, s.value) for s in samples] == [
        ({"namespace": "a", "model": "m"}, NOW, 12.5),
        ({"namespace": "b", "model": "m", "quantile": "0.9"}, NOW, 0.0),
    ]


def test_a_scalar_answer_is_one_sample_without_labels() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [NOW, "60"]}}
    fake = FakePrometheus({"60": httpx.Response(200, json=body)})
    [sample] = fake.client().query("60")
    assert (dict(sample.labels), sample.value) == ({}, 60.0)


def test_the_query_text_and_time_are_sent() -> None:
    fake = FakePrometheus({Q: 1.0})
    client = fake.client(clock=lambda: 1_700_000_123.4567)
    client.query(Q)
    client.query(Q, at=1_600_000_000)
    first, second = fake.requests
    assert first.method == "GET"
    assert first.url.path == "/api/v1/query"
    assert str(first.url).startswith(f"{URL}/api/v1/query?")
    assert dict(first.url.params) == {"query": Q, "time": "1700000123.457"}
    assert dict(second.url.params) == {"query": Q, "time": "1600000000.000"}
    assert "authorization" not in first.headers


def test_a_path_prefix_in_the_url_is_kept() -> None:
    fake = FakePrometheus({Q: 1.0})
    client = PrometheusClient(
        "https://thanos.example/prometheus/", transport=fake.transport(), timeout=1
    )
    client.query(Q, at=NOW)
    assert str(fake.requests[0].url).startswith("https://thanos.example/prometheus/api/v1/query?")


def test_an_empty_result_is_no_data() -> None:
    fake = FakePrometheus()
    with pytest.raises(NoData) as err:
        fake.client().query(Q)
    assert err.value.query == Q
    assert isinstance(err.value, PrometheusError)
    assert isinstance(err.value, InfernoError)


def test_nan_and_infinities_are_parsed_as_floats() -> None:
    fake = FakePrometheus(
        {Q: [({"p": "a"}, math.nan), ({"p": "b"}, math.inf), ({"p": "c"}, -math.inf)]}
    )
    values = [s.value for s in fake.client().query(Q)]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def test_stale_samples_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePrometheus({Q: [({"p": "fresh"}, 1.0), ({"p": "stale"}, 2.0, NOW - 3600)]})
    with caplog.at_level(logging.WARNING, logger="inferno.prom._client"):
        samples = fake.client().query(Q)
    assert [s.labels["p"] for s in samples] == ["fresh"]
    assert "1 stale sample(s)" in caplog.text


def test_only_stale_samples_are_no_data() -> None:
    fake = FakePrometheus({Q: [({"p": "old"}, 5.0, NOW - 600)]})
    with pytest.raises(NoData):
        fake.client(max_sample_age=60).query(Q)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_unavailable(status: int) -> None:
    body = {"status": "error", "errorType": "unavailable", "error": "storage is starting"}
    fake = FakePrometheus({Q: httpx.Response(status, json=body)})
    with pytest.raises(PrometheusUnavailable) as err:
        fake.client().query(Q)
    assert err.value.status == status
    assert f"HTTP {status}: unavailable: storage is starting" in str(err.value)
    assert err.value.query == Q


def test_a_5xx_without_a_json_body_is_unavailable() -> None:
    fake = FakePrometheus({Q: httpx.Response(502, text="<html>Bad Gateway</html>")})
    with pytest.raises(PrometheusUnavailable, match="HTTP 502"):
        fake.client().query(Q)


def test_bad_data_is_a_query_error_with_prometheus_message() -> None:
    body = {
        "status": "error",
        "errorType": "bad_data",
        "error": 'invalid parameter "query": 1:5: parse error: unexpected "}"',
    }
    fake = FakePrometheus({Q: httpx.Response(400, json=body)})
    with pytest.raises(PrometheusQueryError) as err:
        fake.client().query(Q)
    e = err.value
    assert (e.status, e.error_type, e.error) == (400, "bad_data", body["error"])
    assert str(e) == (
        'Prometheus refused the query: HTTP 400: bad_data: invalid parameter "query": '
        f'1:5: parse error: unexpected "}}" (query: {Q})'
    )


def test_an_execution_error_is_a_query_error() -> None:
    body = {"status": "error", "errorType": "execution", "error": "query processing would load "
            "too many samples into memory"}  # fmt: skip
    fake = FakePrometheus({Q: httpx.Response(422, json=body)})
    with pytest.raises(PrometheusQueryError, match="too many samples") as err:
        fake.client().query(Q)
    assert err.value.error_type == "execution"


def test_an_error_status_in_a_200_answer_is_a_query_error() -> None:
    body = {"status": "error", "errorType": "internal", "error": "boom"}
    fake = FakePrometheus({Q: httpx.Response(200, json=body)})
    with pytest.raises(PrometheusQueryError, match="internal: boom"):
        fake.client().query(Q)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>sign in</html>"),
        httpx.Response(401, text="Unauthorized"),
        httpx.Response(302, headers={"Location": "https://sso.example/"}),
        httpx.Response(200, json={"data": {}}),
    ],
    ids=["html", "401", "redirect", "no-status"],
)
def test_an_answer_that_is_not_prometheus_json_is_a_query_error(response: httpx.Response) -> None:
    fake = FakePrometheus({Q: response})
    with pytest.raises(PrometheusQueryError, match="not a Prometheus API answer") as err:
        fake.client().query(Q)
    assert err.value.status == response.status_code


def test_a_matrix_answer_is_a_query_error() -> None:
    body = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    fake = FakePrometheus({Q: httpx.Response(200, json=body)})
    with pytest.raises(PrometheusQueryError, match="expected an instant vector, got 'matrix'"):
        fake.client().query(Q)


def test_a_malformed_sample_is_a_query_error() -> None:
    body = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [NOW, "many"]}]},
    }
    fake = FakePrometheus({Q: httpx.Response(200, json=body)})
    with pytest.raises(PrometheusQueryError, match="malformed sample"):
        fake.client().query(Q)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("timed out"),
        httpx.ConnectTimeout("timed out"),
        httpx.ConnectError("connection refused"),
        httpx.RemoteProtocolError("server disconnected"),
    ],
)
def test_timeouts_and_connection_failures_are_unavailable(exc: Exception) -> None:
    fake = FakePrometheus({Q: exc})
    with pytest.raises(PrometheusUnavailable) as err:
        fake.client().query(Q)
    assert err.value.status is None
    assert URL in str(err.value)
    if isinstance(exc, httpx.TimeoutException):
        assert "did not answer in time" in str(err.value)


def test_the_bearer_token_is_sent() -> None:
    fake = FakePrometheus({Q: 1.0})
    fake.client(token="s3cret").query(Q)
    assert fake.requests[0].headers["authorization"] == "Bearer s3cret"


def test_a_token_file_is_read_for_every_query(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    fake = FakePrometheus({Q: 1.0})
    client = fake.client(token_file=str(token))
    client.query(Q)
    token.write_text("rotated")
    client.query(Q)
    assert [r.headers["authorization"] for r in fake.requests] == [
        "Bearer first",
        "Bearer rotated",
    ]
    token.unlink()
    with pytest.raises(PrometheusError, match="cannot read the token file"):
        client.query(Q)


def test_token_and_token_file_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(PrometheusError, match="not both"):
        PrometheusClient(URL, token="a", token_file=str(tmp_path / "t"), timeout=1)


def test_a_ca_file_is_loaded_or_refused(tmp_path: Path) -> None:
    PrometheusClient("https://prom.example", ca_file=certifi.where(), timeout=1).close()
    with pytest.raises(PrometheusError, match="cannot use the CA file"):
        PrometheusClient("https://prom.example", ca_file=str(tmp_path / "missing.pem"), timeout=1)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(PrometheusError, match="cannot use the CA file"):
        PrometheusClient("https://prom.example", ca_file=str(garbage), timeout=1)


def test_warnings_in_an_answer_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    body = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {}, "value": [NOW, "1"]}]},
        "warnings": ["PromQL info: metric might not be a counter"],
    }
    fake = FakePrometheus({Q: httpx.Response(200, json=body)})
    with caplog.at_level(logging.WARNING, logger="inferno.prom._client"):
        fake.client().query(Q)
    assert "metric might not be a counter" in caplog.text


def test_the_client_is_a_context_manager() -> None:
    fake = FakePrometheus({Q: 1.0})
    with fake.client() as client:
        assert client.query(Q)[0].value == 1.0
        assert client.now() == NOW
