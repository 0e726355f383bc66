"""The whole tagged-request chain of a batch server, as a dense generator: the reference the
response-time tests compare the model's survival against (by a matrix exponential or by
uniformisation).

States: ("s", 0, n) — the tagged request in service with n in the system; ("w", a, n) — it waits
with a ahead of it and n in the system. ``tau`` are the batch times τ(1..N), ``k`` the capacity,
``p`` the distribution an arrival sees (the first ``k`` entries are the accepted ones).
"""

from __future__ import annotations

import numpy as np


def tagged_chain(
    lam: float, tau: np.ndarray, k: int, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(generator Q, the entry distribution of an accepted arrival) of the tagged chain; the
    survival P(R > t) is entry · exp(Q·t) · 1."""
    n_b = tau.size
    states: dict[tuple[str, int, int], int] = {}
    for n in range(1, k + 1):
        states[("s", 0, n)] = len(states)
    for a in range(n_b, k):
        for n in range(a + 1, k + 1):
            states[("w", a, n)] = len(states)
    q = np.zeros((len(states), len(states)))
    mu = n_b / tau[-1]
    for (kind, a, n), i in states.items():
        if kind == "s":
            b = min(n, n_b)
            q[i, i] -= b / tau[b - 1]  # the tagged request or another one leaves
            if b > 1:
                q[i, states[("s", 0, n - 1)]] += (b - 1) / tau[b - 1]
        else:
            q[i, states[("w", a - 1, n - 1) if a - 1 >= n_b else ("s", 0, n - 1)]] += mu
            q[i, i] -= mu
        if n < k:
            q[i, states[(kind, a, n + 1)]] += lam
            q[i, i] -= lam
    entry = np.zeros(len(states))
    accepted = p[:k] / p[:k].sum()
    for n in range(k):  # an arrival that sees n
        entry[states[("s", 0, n + 1)] if n < n_b else states[("w", n, n + 1)]] += accepted[n]
    return q, entry
