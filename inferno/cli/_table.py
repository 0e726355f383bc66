"""Plain-text tables for people (no colour, no dependencies)."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["render"]


def render(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: set[int] | None = None
) -> str:
    """Columns padded to their widest cell; ``right`` lists the columns aligned right."""
    right = right if right is not None else set()
    cells = [[str(h) for h in headers]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, row in enumerate(cells):
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:  # NaN
            return "-"
        return (
            f"{v:,.2f}" if abs(v) >= 100 else f"{v:.3g}" if abs(v) < 0.01 and v != 0 else f"{v:.2f}"
        )
    return str(v)
