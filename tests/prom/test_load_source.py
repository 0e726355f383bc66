"""PrometheusLoadSource end to end over a fake Prometheus, and its construction from settings."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest

from inferno.cluster import labels as L
from inferno.cluster.inventory import ManagedDeployment, parse_deployment
from inferno.prom import (
    NoData,
    PrometheusLoadSource,
    PrometheusQueryError,
    PrometheusUnavailable,
    ServerQueries,
    TokenMetrics,
    selector_for,
    server_queries,
    source_from_settings,
)
from inferno.settings import Settings, SettingsError
from inferno.system import Load

from .fakes import NOW, FakePrometheus


def deployment(
    name: str,
    model: str = "llama_7b",
    *,
    namespace: str = "inference",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> ManagedDeployment:
    return parse_deployment(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": {L.MANAGED: "true", L.MODEL: model, **(labels or {})},
                "annotations": annotations or {},
            },
            "spec": {"template": {"spec": {"containers": [{"name": "triton"}]}}},
        }
    )


def queries(d: ManagedDeployment, window: float = 60, tokens: TokenMetrics | None = None) -> Any:
    return server_queries(selector_for(d), window, tokens)


def answer(q: ServerQueries, **values: Any) -> dict[str, Any]:
    return {getattr(q, name): value for name, value in values.items()}


LLAMA = deployment("llama-7b")


def test_rates_become_a_load_in_requests_per_minute() -> None:
    q = queries(LLAMA)
    fake = FakePrometheus(
        answer(
            q,
            completions_rpm=120.0,
            pending_delta=0.0,
            in_tokens=512.0,
            out_tokens=256.0,
            avg_batch=6.5,
            queue_ms=12.0,
            compute_ms=85.0,
            latency_ms=[({"quantile": "0.5"}, 90.0), ({"quantile": "0.99"}, 240.0)],
        )
    )
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    assert m.loads == {"llama-7b": Load(120.0, 512.0, 256.0)}
    assert m.problems == []
    [obs] = m.observations
    assert (obs.avg_batch, obs.queue_ms, obs.compute_ms) == (6.5, 12.0, 85.0)
    assert obs.latency_ms == {"0.5": 90.0, "0.99": 240.0}
    assert obs.notes == ()
    assert sorted(fake.queries) == sorted(v for _, v in q.items())
    assert {r.url.params["time"] for r in fake.requests} == {f"{NOW:.3f}"}  # one instant
    assert m.to_json()["servers"][0]["load"] == {
        "arrivalRate": 120.0,
        "avgInTokens": 512.0,
        "avgOutTokens": 256.0,
    }


def test_pending_growth_is_offered_load() -> None:
    q = queries(LLAMA, window=120)
    fake = FakePrometheus(
        answer(q, completions_rpm=100.0, pending_delta=40.0, in_tokens=1.0, out_tokens=1.0)
    )
    m = PrometheusLoadSource(fake.client(), 120).measure([LLAMA])
    assert m.loads["llama-7b"].arrival_rate == pytest.approx(120.0)  # 100 + 40 per 2 minutes
    assert m.observations[0].completions_rpm == 100.0
    assert m.observations[0].pending_delta == 40.0


def test_a_shrinking_backlog_is_not_subtracted() -> None:
    q = queries(LLAMA)
    fake = FakePrometheus(answer(q, completions_rpm=100.0, pending_delta=-25.0))
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    assert m.loads["llama-7b"].arrival_rate == 100.0


def test_no_pending_series_leaves_the_completions_with_a_note() -> None:
    q = queries(LLAMA)
    fake = FakePrometheus(answer(q, completions_rpm=30.0))
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    assert m.loads["llama-7b"].arrival_rate == 30.0
    assert any("no pending-request series" in n for n in m.observations[0].notes)


def test_an_idle_server_has_a_zero_load_not_no_data() -> None:
    q = queries(LLAMA)
    fake = FakePrometheus(
        answer(q, completions_rpm=0.0, pending_delta=0.0, avg_batch=math.nan, queue_ms=math.nan)
    )
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    assert m.loads["llama-7b"].arrival_rate == 0.0
    assert m.problems == []
    assert (m.observations[0].avg_batch, m.observations[0].queue_ms) == (None, None)


def test_a_server_without_series_is_reported_not_zero_filled() -> None:
    mistral = deployment("mistral-7b", "mistral_7b")
    fake = FakePrometheus(answer(queries(LLAMA), completions_rpm=60.0))
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA, mistral])
    assert set(m.loads) == {"llama-7b"}
    [problem] = m.problems
    assert problem.startswith(
        "server mistral-7b (Deployment inference/mistral-7b, Triton model 'mistral_7b'): "
        "no request rate in Prometheus over the last 60s"
    )
    assert 'pod=~"mistral-7b-[a-z0-9]+-[a-z0-9]+"' in problem
    absent = m.observations[1]
    assert absent.load is None and absent.completions_rpm is None
    # nothing else is asked about a server without requests
    assert sum("mistral" in query for query in fake.queries) == 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_a_non_finite_or_negative_rate_is_no_data(value: float) -> None:
    other = deployment("granite-13b", "granite_13b")
    fake = FakePrometheus(
        {
            **answer(queries(LLAMA), completions_rpm=value),
            **answer(queries(other), completions_rpm=6),
        }
    )
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA, other])
    assert set(m.loads) == {"granite-13b"}
    assert "llama-7b" in m.problems[0]


def test_no_server_with_data_is_no_data() -> None:
    fake = FakePrometheus()
    with pytest.raises(NoData, match="no request series for any of the 2 managed server"):
        PrometheusLoadSource(fake.client(), 60).measure([LLAMA, deployment("b")])


def test_nothing_managed_asks_nothing() -> None:
    fake = FakePrometheus()
    m = PrometheusLoadSource(fake.client(), 60).measure([])
    assert (m.loads, m.problems, fake.requests) == ({}, [], [])


def test_several_series_for_one_quantity_are_not_trusted() -> None:
    q = queries(LLAMA)
    two = [({"namespace": "inference", "model": "a"}, 1.0), ({"namespace": "x", "model": "a"}, 2.0)]
    fake = FakePrometheus(answer(q, completions_rpm=60.0, avg_batch=two))
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    assert m.observations[0].avg_batch is None


def test_missing_token_metrics_fall_back_to_the_load_labels() -> None:
    labelled = deployment(
        "llama-7b", labels={L.LOAD_RPM: "999", L.LOAD_IN_TOKENS: "100", L.LOAD_OUT_TOKENS: "900"}
    )
    fake = FakePrometheus(answer(queries(labelled), completions_rpm=60.0, in_tokens=150.0))
    m = PrometheusLoadSource(fake.client(), 60).measure([labelled])
    assert m.loads["llama-7b"] == Load(60.0, 150.0, 900.0)  # the rate is never the label's
    obs = m.observations[0]
    assert (obs.in_tokens, obs.out_tokens) == (150.0, None)
    assert (
        "no tokens per request from vllm:generation_tokens_total: taken from the load labels"
        in (obs.notes)
    )


def test_missing_token_metrics_without_labels_are_zero() -> None:
    fake = FakePrometheus(answer(queries(LLAMA), completions_rpm=60.0))
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    assert m.loads["llama-7b"] == Load(60.0, 0.0, 0.0)
    assert any(n.endswith("taken from 0") for n in m.observations[0].notes)


def test_the_triton_model_annotation_selects_the_series() -> None:
    d = deployment("trt", "llama3_8b", annotations={L.TRITON_MODEL: "tensorrt_llm"})
    assert d.triton_model == "tensorrt_llm"
    trt = TokenMetrics(
        "nv_llm_input_token_len_sum", "nv_llm_output_token_len_sum", "nv_llm_input_token_len_count"
    )
    q = queries(d, tokens=trt)
    assert 'model="tensorrt_llm"' in q.completions_rpm
    fake = FakePrometheus(answer(q, completions_rpm=10.0, in_tokens=300.0, out_tokens=50.0))
    m = PrometheusLoadSource(fake.client(), 60, trt).measure([d])
    assert m.loads["trt"] == Load(10.0, 300.0, 50.0)
    assert m.observations[0].model == "tensorrt_llm"


def test_the_model_label_is_the_default_triton_model() -> None:
    assert deployment("a", "granite_13b").triton_model == "granite_13b"
    assert 'model="granite_13b"' in queries(deployment("a", "granite_13b")).completions_rpm


def test_prometheus_down_fails_the_whole_measurement() -> None:
    fake = FakePrometheus({queries(LLAMA).completions_rpm: httpx.ConnectError("refused")})
    with pytest.raises(PrometheusUnavailable):
        PrometheusLoadSource(fake.client(), 60).measure([LLAMA])


def test_a_refused_query_fails_the_whole_measurement() -> None:
    q = queries(LLAMA)
    body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    fake = FakePrometheus(answer(q, completions_rpm=60.0, in_tokens=httpx.Response(400, json=body)))
    with pytest.raises(PrometheusQueryError, match="parse error"):
        PrometheusLoadSource(fake.client(), 60).measure([LLAMA])


def test_a_bad_window_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="window"):
        PrometheusLoadSource(FakePrometheus().client(), 0)


# settings


def test_no_url_no_source() -> None:
    assert source_from_settings(Settings.from_env({})) is None


def test_a_source_from_settings(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc")
    s = Settings.from_env(
        {
            "PROMETHEUS_URL": "https://prometheus.monitoring.svc:9091",
            "PROMETHEUS_TOKEN_FILE": str(token),
            "PROMETHEUS_CA_FILE": certifi.where(),
            "INFERNO_LOAD_WINDOW": "120",
            "INFERNO_TOKENS_IN_METRIC": "nv_llm_input_token_len_sum",
            "INFERNO_TOKENS_OUT_METRIC": "nv_llm_output_token_len_sum",
            "INFERNO_TOKENS_REQUESTS_METRIC": "nv_llm_input_token_len_count",
        }
    )
    source = source_from_settings(s)
    assert source is not None
    assert source.window == 120.0
    assert source.tokens == TokenMetrics(
        "nv_llm_input_token_len_sum", "nv_llm_output_token_len_sum", "nv_llm_input_token_len_count"
    )
    assert source.client.base_url == "https://prometheus.monitoring.svc:9091"
    source.close()


def test_settings_defaults() -> None:
    s = Settings.from_env({})
    assert (s.prometheus.prometheus_url, s.prometheus.load_window) == ("", 60.0)
    assert TokenMetrics(
        s.prometheus.tokens_in_metric,
        s.prometheus.tokens_out_metric,
        s.prometheus.tokens_requests_metric,
    ) == (TokenMetrics())


def test_the_token_is_not_in_the_settings_repr() -> None:
    assert "s3cret" not in repr(Settings.from_env({"PROMETHEUS_TOKEN": "s3cret"}))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INFERNO_LOAD_WINDOW": "0"}, "INFERNO_LOAD_WINDOW=0.0: expected > 0 seconds"),
        ({"INFERNO_LOAD_WINDOW": "a minute"}, "INFERNO_LOAD_WINDOW='a minute': expected a number"),
        ({"PROMETHEUS_URL": "prometheus:9090"}, "expected an http:// or https:// URL"),
        (
            {"PROMETHEUS_TOKEN": "a", "PROMETHEUS_TOKEN_FILE": "/t"},
            "PROMETHEUS_TOKEN and PROMETHEUS_TOKEN_FILE are both set",
        ),
        ({"INFERNO_TOKENS_IN_METRIC": "vllm prompt"}, "expected a Prometheus metric name"),
    ],
)
def test_bad_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(message)):
        Settings.from_env(env)


def test_unreadable_files_are_settings_errors(tmp_path: Path) -> None:
    url = {"PROMETHEUS_URL": "https://prometheus.example"}
    missing = str(tmp_path / "missing")
    with pytest.raises(SettingsError, match=r"PROMETHEUS_TOKEN_FILE=.*cannot read it"):
        source_from_settings(Settings.from_env({**url, "PROMETHEUS_TOKEN_FILE": missing}))
    with pytest.raises(SettingsError, match=r"PROMETHEUS_CA_FILE=.*cannot use the CA file"):
        source_from_settings(Settings.from_env({**url, "PROMETHEUS_CA_FILE": missing}))


def _histogram(x: Any) -> list[tuple[dict[str, str], float]]:
    """``x``'s lengths as the ``increase()`` of a vLLM token histogram's ``_bucket`` series (its
    1-2-5 bounds), one sample per bound, for llama_7b."""
    import numpy as np

    bounds = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)
    labels = {"namespace": "inference", "model": "llama_7b"}
    buckets = [({**labels, "le": f"{b:.1f}"}, float(np.sum(x <= b))) for b in bounds]
    return [*buckets, ({**labels, "le": "+Inf"}, float(np.size(x)))]


def test_a_histogram_of_generated_tokens_gives_the_lengths_cv_and_family() -> None:
    """With the backend's histogram of generated tokens per request, the load carries the
    lengths' fitted CV and family (inferno.prom.lengths), and so does the server's row of the
    optimizer data; without it, or without a mean to fit to, neither."""
    import numpy as np

    from inferno.cluster.inventory import server_row
    from inferno.emulator import LogNormal

    x = LogNormal(256.0, 1.5).sample(3000, np.random.default_rng(5)).astype(np.float64)
    buckets = _histogram(x)
    labels = {"namespace": "inference", "model": "llama_7b"}
    q = queries(LLAMA)
    values = answer(q, completions_rpm=120.0, pending_delta=0.0, in_tokens=512.0)
    fake = FakePrometheus({**values, **answer(q, out_tokens=float(x.mean()), out_buckets=buckets)})
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    load = m.loads["llama-7b"]
    assert load.out_tokens_dist == "lognormal"
    assert load.out_tokens_cov == pytest.approx(1.5, rel=0.1)
    assert m.to_json()["servers"][0]["load"]["outTokensDist"] == "lognormal"
    row = server_row(LLAMA, load)["currentAlloc"]["load"]
    assert row["outTokensDist"] == "lognormal" and row["outTokensCOV"] == load.out_tokens_cov
    assert q.out_buckets in fake.queries
    # no histogram: the defaults stay (nothing in the load, nothing in the row)
    fake = FakePrometheus({**values, **answer(q, out_tokens=256.0)})
    load = PrometheusLoadSource(fake.client(), 60).measure([LLAMA]).loads["llama-7b"]
    assert (load.out_tokens_cov, load.out_tokens_dist) == (None, None)
    assert "outTokensDist" not in server_row(LLAMA, load)["currentAlloc"]["load"]
    # no mean (no token counters): the histogram is not even asked
    fake = FakePrometheus({**values, **answer(q, out_buckets=buckets)})
    load = PrometheusLoadSource(fake.client(), 60).measure([LLAMA]).loads["llama-7b"]
    assert load.out_tokens_dist is None and q.out_buckets not in fake.queries
    # a bucket label that is not a number: not a histogram, not fitted
    bad = [*buckets[:-1], ({**labels, "le": "many"}, float(x.size))]
    fake = FakePrometheus({**values, **answer(q, out_tokens=256.0, out_buckets=bad)})
    load = PrometheusLoadSource(fake.client(), 60).measure([LLAMA]).loads["llama-7b"]
    assert load.out_tokens_dist is None


def test_fixed_lengths_carry_their_buckets_bound_with_a_note() -> None:
    """Every request 256 tokens long: one bucket, (200, 500], no shape to fit. The load and the
    server's row carry the most spread lengths of that mean can have there, and the
    observation says it is a bound."""
    import numpy as np

    from inferno.cluster.inventory import server_row

    x = np.full(3000, 256.0)
    q = queries(LLAMA)
    values = answer(q, completions_rpm=120.0, pending_delta=0.0, in_tokens=512.0)
    fake = FakePrometheus({**values, **answer(q, out_tokens=256.0, out_buckets=_histogram(x))})
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    load = m.loads["llama-7b"]
    most = math.sqrt((256 - 201) * (500 - 256)) / 256
    assert load.out_tokens_cov == pytest.approx(most) and load.out_tokens_dist == "gamma"
    assert server_row(LLAMA, load)["currentAlloc"]["load"]["outTokensCOV"] == load.out_tokens_cov
    (obs,) = m.to_json()["servers"]
    assert obs["load"]["outTokensCOV"] == load.out_tokens_cov
    assert any("output lengths all within one or two histogram buckets" in n for n in obs["notes"])


def test_a_capped_servers_histogram_is_fitted_capped_and_the_row_keeps_the_cap() -> None:
    """A Deployment annotated with its most output tokens: the histogram of the served
    (capped) lengths is fitted with the capped family, so the CV is the served lengths' (what
    the model takes with the cap) and the server's row tells the model the cap. Fitted as if
    uncapped, the same histogram gives a CV over 20% above the served one."""
    import numpy as np

    from inferno.cluster.inventory import server_row
    from inferno.emulator import LogNormal

    capped = deployment("llama-7b", annotations={L.MAX_OUTPUT_TOKENS: "2048"})
    x = LogNormal(512.0, 1.5, 2048).sample(3000, np.random.default_rng(5)).astype(np.float64)
    served_cv = float(x.std() / x.mean())
    q = queries(capped)
    values = answer(q, completions_rpm=120.0, pending_delta=0.0, in_tokens=512.0)
    fake = FakePrometheus(
        {**values, **answer(q, out_tokens=float(x.mean()), out_buckets=_histogram(x))}
    )
    load = PrometheusLoadSource(fake.client(), 60).measure([capped]).loads["llama-7b"]
    assert load.out_tokens_dist == "lognormal"
    assert load.out_tokens_cov == pytest.approx(served_cv, rel=0.05)
    row = server_row(capped, load)["currentAlloc"]["load"]
    assert row["outTokensMax"] == 2048 and row["outTokensCOV"] == load.out_tokens_cov
    uncapped = PrometheusLoadSource(fake.client(), 60).measure([LLAMA]).loads["llama-7b"]
    assert uncapped.out_tokens_cov is not None
    assert uncapped.out_tokens_cov > 1.2 * served_cv


def test_a_histogram_of_prompt_tokens_gives_the_input_lengths_cv_and_family() -> None:
    """The prompt-token histogram (``INFERNO_TOKENS_IN_HISTOGRAM``) gives the input lengths'
    CV and family, carried into the load, the collector's JSON and the server's row; the output
    lengths' fit is independent of it."""
    import numpy as np

    from inferno.cluster.inventory import server_row
    from inferno.emulator import Exponential

    x = Exponential(512.0).sample(3000, np.random.default_rng(6)).astype(np.float64)
    buckets = _histogram(x)
    q = queries(LLAMA)
    values = answer(q, completions_rpm=120.0, pending_delta=0.0, out_tokens=128.0)
    fake = FakePrometheus({**values, **answer(q, in_tokens=float(x.mean()), in_buckets=buckets)})
    m = PrometheusLoadSource(fake.client(), 60).measure([LLAMA])
    load = m.loads["llama-7b"]
    assert load.in_tokens_dist == "gamma"
    assert load.in_tokens_cov == pytest.approx(1.0, rel=0.1)
    assert (load.out_tokens_cov, load.out_tokens_dist) == (None, None)
    assert m.to_json()["servers"][0]["load"]["inTokensCOV"] == load.in_tokens_cov
    row = server_row(LLAMA, load)["currentAlloc"]["load"]
    assert row["inTokensDist"] == "gamma" and row["inTokensCOV"] == load.in_tokens_cov
    assert "outTokensCOV" not in row
    # a model with no prompt (0 input tokens per request): nothing to fit, nothing asked
    fake = FakePrometheus({**values, **answer(q, in_tokens=0.0, in_buckets=buckets)})
    load = PrometheusLoadSource(fake.client(), 60).measure([LLAMA]).loads["llama-7b"]
    assert load.in_tokens_dist is None and q.in_buckets not in fake.queries


def test_too_few_requests_in_the_window_fits_the_lengths_over_the_longer_window() -> None:
    """A server near 100 requests a window: with fewer, the histogram cannot be fitted, and
    the model would be told the spread in one cycle and its default in the next. The histogram and
    the mean over ``lengths_window`` are fitted instead, with a note; a window with enough
    requests asks nothing more."""
    import numpy as np

    from inferno.emulator import LogNormal

    rng = np.random.default_rng(7)
    recent = LogNormal(256.0, 1.5).sample(60, rng).astype(np.float64)
    longer = np.concatenate([recent, LogNormal(256.0, 1.5).sample(1500, rng)]).astype(np.float64)
    q, wide = queries(LLAMA), queries(LLAMA, 900)
    values = answer(q, completions_rpm=60.0, pending_delta=0.0, in_tokens=512.0)
    fake = FakePrometheus(
        {
            **values,
            **answer(q, out_tokens=float(recent.mean()), out_buckets=_histogram(recent)),
            **answer(wide, out_tokens=float(longer.mean()), out_buckets=_histogram(longer)),
        }
    )
    m = PrometheusLoadSource(fake.client(), 60, lengths_window=900).measure([LLAMA])
    load = m.loads["llama-7b"]
    assert load.out_tokens_dist == "lognormal"
    assert load.out_tokens_cov == pytest.approx(1.5, rel=0.15)
    assert load.out_tokens == pytest.approx(recent.mean())  # the mean is still the window's
    (obs,) = m.to_json()["servers"]
    (note,) = [n for n in obs["notes"] if "fitted over the last 900s" in n]
    assert "1560 requests; 60 in the load window" in note
    # not widened (the window's own): no fit, and the longer window is not asked
    fake = FakePrometheus(fake.answers)
    narrow = PrometheusLoadSource(fake.client(), 60).measure([LLAMA]).loads["llama-7b"]
    assert narrow.out_tokens_cov is None and wide.out_buckets not in fake.queries
    # enough requests in the window: its own fit, the longer window not asked
    many = answer(q, out_tokens=float(longer.mean()), out_buckets=_histogram(longer))
    fake = FakePrometheus({**values, **many})
    own = PrometheusLoadSource(fake.client(), 60, lengths_window=900).measure([LLAMA])
    assert own.loads["llama-7b"].out_tokens_dist == "lognormal"
    assert wide.out_buckets not in fake.queries


def test_the_lengths_window_setting() -> None:
    assert Settings.from_env({}).prometheus.lengths_window == 900.0
    s = Settings.from_env({"PROMETHEUS_URL": "http://p:9090", "INFERNO_LENGTHS_WINDOW": "1800"})
    source = source_from_settings(s)
    assert source is not None and source.lengths_window == 1800.0
    source.close()
    with pytest.raises(SettingsError, match="INFERNO_LENGTHS_WINDOW"):
        Settings.from_env({"INFERNO_LENGTHS_WINDOW": "0"})
