"""The PromQL builders: selection of a server's series, windows, and the doc's examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inferno.prom.queries import (
    ServerSelector,
    TokenMetrics,
    duration,
    offered_rpm,
    server_queries,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
SAMPLE = ServerSelector("inferno-servers", "premium-llama3-8b", "llama3_8b")
SEL = 'namespace="inferno-servers", pod=~"premium-llama3-8b-[a-z0-9]+-[a-z0-9]+", model="llama3_8b"'


def pod_regex(selector: ServerSelector) -> str:
    """The pod regular expression as Prometheus sees it (the string literal unescaped)."""
    match = re.search(r'pod=~"((?:[^"\\]|\\.)*)"', selector.matchers())
    assert match is not None
    return re.sub(r"\\(.)", r"\1", match[1])


def test_the_selector_names_namespace_pods_and_model() -> None:
    assert SAMPLE.matchers() == SEL


@pytest.mark.parametrize(
    ("pod", "selected"),
    [
        ("premium-llama3-8b-6d4cf56db6-x2k9p", True),
        ("premium-llama3-8b-7f9c8d5b4-abcde", True),
        ("premium-llama3-8b-canary-6d4cf56db6-x2k9p", False),  # another Deployment's pods
        ("premium-llama3-8b-x2k9p", False),  # a bare pod or a StatefulSet's: not a Deployment's
        ("other-premium-llama3-8b-6d4cf56db6-x2k9p", False),  # anchored at the start
        ("premium-llama3-8b", False),
    ],
)
def test_the_pod_regex_selects_exactly_the_deployments_pods(pod: str, selected: bool) -> None:
    assert (re.fullmatch(pod_regex(SAMPLE), pod) is not None) is selected


def test_a_shorter_deployment_name_does_not_select_a_longer_ones_pods() -> None:
    llama = ServerSelector("ns", "llama", "m")
    assert re.fullmatch(pod_regex(llama), "llama-6d4cf56db6-x2k9p")
    assert not re.fullmatch(pod_regex(llama), "llama-7b-6d4cf56db6-x2k9p")


def test_names_are_escaped_for_promql_and_regex() -> None:
    sel = ServerSelector('team"a', "web.v2", 'my\\model"x')
    assert sel.matchers() == (
        'namespace="team\\"a", pod=~"web\\\\.v2-[a-z0-9]+-[a-z0-9]+", model="my\\\\model\\"x"'
    )
    regex = pod_regex(sel)
    assert regex == "web\\.v2-[a-z0-9]+-[a-z0-9]+"
    assert re.fullmatch(regex, "web.v2-abc-def")
    assert not re.fullmatch(regex, "webxv2-abc-def")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(60, "60s"), (60.0, "60s"), (300, "300s"), (90.5, "90500ms"), (0.25, "250ms"), (1e-4, "1ms")],
)
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_a_window_must_be_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match="positive number of seconds"):
        duration(bad)


def test_the_queries_of_a_sample_server() -> None:
    q = server_queries(SAMPLE, 60)
    s = f"{{{SEL}}}[60s]"
    g = "sum by (namespace, model)"
    success = f"{g} (increase(nv_inference_request_success{s}))"
    assert q.completions_rpm == (
        f"60 * ({g} (rate(nv_inference_request_success{s})) + "
        f"{g} (rate(nv_inference_request_failure{s})))"
    )
    assert q.pending_delta == f"{g} (delta(nv_inference_pending_request_count{s}))"
    assert q.avg_batch == (
        f"{g} (increase(nv_inference_count{s})) / {g} (increase(nv_inference_exec_count{s}))"
    )
    assert q.queue_ms == f"{g} (increase(nv_inference_queue_duration_us{s})) / {success} / 1000"
    assert q.compute_ms == (
        f"{g} (increase(nv_inference_compute_infer_duration_us{s})) / {success} / 1000"
    )
    assert q.latency_ms == (
        f"max by (namespace, model, quantile) (nv_inference_request_summary_us{{{SEL}}}) / 1000"
    )
    assert q.in_tokens == f"{g} (increase(vllm:prompt_tokens_total{s})) / {success}"
    assert q.out_tokens == f"{g} (increase(vllm:generation_tokens_total{s})) / {success}"


def test_token_metric_names_are_configurable() -> None:
    trt = TokenMetrics(
        "nv_llm_input_token_len_sum", "nv_llm_output_token_len_sum", "nv_llm_input_token_len_count"
    )
    q = server_queries(SAMPLE, 120, trt)
    s = f"{{{SEL}}}[120s]"
    assert q.in_tokens == (
        f"sum by (namespace, model) (increase(nv_llm_input_token_len_sum{s})) / "
        f"sum by (namespace, model) (increase(nv_llm_input_token_len_count{s}))"
    )
    assert "nv_llm_output_token_len_sum" in q.out_tokens
    assert "[120s]" in q.completions_rpm


def test_counters_are_only_read_through_a_window_summed_over_pods() -> None:
    """What keeps deleted pods from distorting the result: no instant value of a counter, no
    per-pod answer (the grouping drops ``pod``), every range over the configured window. The
    gauges (the pending count, the summary's quantiles) are read as they are now."""
    q = server_queries(SAMPLE, 60)
    for name, promql in q.items():
        selectors = re.findall(r"[a-z_:]+\{[^}]*\}(\[[^\]]*\])?", promql)
        assert selectors, name
        if name == "latency_ms":  # a summary's quantiles: gauges, aggregated with max
            assert promql.startswith("max by (namespace, model, quantile) (")
            continue
        if name == "pending":  # a gauge: its value now, summed over the pods
            assert promql.startswith(
                "sum by (namespace, model) (nv_inference_pending_request_count{"
            )
            assert not promql.endswith("]))")
            continue
        assert all(window == "[60s]" for window in selectors), name
        if name in ("out_buckets", "in_buckets"):  # histograms: a series per bucket bound
            assert promql.startswith("sum by (namespace, model, le) (increase(")
            metric = "generation" if name == "out_buckets" else "prompt"
            assert f"vllm:request_{metric}_tokens_bucket{{" in promql
            continue
        calls = re.findall(r"sum by \(namespace, model\) \((rate|increase|delta)\(", promql)
        assert len(calls) == len(selectors), name


def test_offered_load_counts_pending_growth_but_never_subtracts() -> None:
    assert offered_rpm(120.0, 0.0, 60) == 120.0
    assert offered_rpm(120.0, 30.0, 60) == 150.0  # 30 more waiting after a minute: +30/min
    assert offered_rpm(120.0, 30.0, 120) == 135.0
    assert offered_rpm(120.0, -50.0, 60) == 120.0  # a backlog worked off: still 120


def doc_queries() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    return dict(re.findall(r"`(\w+)`[^\n]*\n+```promql\n(.*?)\n```", text, flags=re.S))


def test_the_docs_example_queries_are_the_builders_output() -> None:
    assert doc_queries() == dict(server_queries(SAMPLE, 60).items())
