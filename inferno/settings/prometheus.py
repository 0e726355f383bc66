"""Where the collector measures the load: :class:`PrometheusOptions`."""

from __future__ import annotations

from dataclasses import dataclass

from ._group import METRIC_NAME, URL, Group, SettingsError, finite, option

__all__ = ["PrometheusOptions"]


@dataclass(frozen=True, slots=True)
class PrometheusOptions(Group):
    """Where the collector measures the load (docs/metrics.md); no URL: the load labels."""

    prometheus_url: str = option("", "PROMETHEUS_URL", "the Prometheus to read the load from")
    prometheus_token: str = option(
        "", "PROMETHEUS_TOKEN", "a bearer token for Prometheus", secret=True
    )
    prometheus_token_file: str = option(
        "", "PROMETHEUS_TOKEN_FILE", "a file holding that bearer token"
    )
    prometheus_ca_file: str = option("", "PROMETHEUS_CA_FILE", "a CA bundle for Prometheus")
    load_window: float = option(
        60.0, "INFERNO_LOAD_WINDOW", "seconds of history behind each measured rate"
    )
    lengths_window: float = option(
        900.0,
        "INFERNO_LENGTHS_WINDOW",
        "seconds of history the lengths' histograms are fitted over when the load window holds "
        "too few requests for a fit (docs/metrics.md)",
    )
    tokens_in_metric: str = option(
        "vllm:prompt_tokens_total", "INFERNO_TOKENS_IN_METRIC", "the input-token counter"
    )
    tokens_out_metric: str = option(
        "vllm:generation_tokens_total", "INFERNO_TOKENS_OUT_METRIC", "the output-token counter"
    )
    tokens_requests_metric: str = option(
        "nv_inference_request_success",
        "INFERNO_TOKENS_REQUESTS_METRIC",
        "the request counter of the token means",
    )
    tokens_out_histogram: str = option(
        "vllm:request_generation_tokens",
        "INFERNO_TOKENS_OUT_HISTOGRAM",
        "the histogram of generated tokens per request (the output lengths' CV and family)",
    )
    tokens_in_histogram: str = option(
        "vllm:request_prompt_tokens",
        "INFERNO_TOKENS_IN_HISTOGRAM",
        "the histogram of prompt tokens per request (the input lengths' CV and family)",
    )

    def check(self) -> None:
        self._require(
            "load_window", finite(self.load_window) and self.load_window > 0, "> 0 seconds"
        )
        self._require(
            "lengths_window",
            finite(self.lengths_window) and self.lengths_window > 0,
            "> 0 seconds",
        )
        if self.prometheus_url:
            self._require(
                "prometheus_url",
                URL.fullmatch(self.prometheus_url) is not None,
                "an http:// or https:// URL",
            )
        if self.prometheus_token and self.prometheus_token_file:
            raise SettingsError(
                "PROMETHEUS_TOKEN and PROMETHEUS_TOKEN_FILE are both set: expected one of them"
            )
        for name in (
            "tokens_in_metric",
            "tokens_out_metric",
            "tokens_requests_metric",
            "tokens_out_histogram",
            "tokens_in_histogram",
        ):
            self._require(
                name,
                METRIC_NAME.fullmatch(getattr(self, name)) is not None,
                "a Prometheus metric name",
            )
