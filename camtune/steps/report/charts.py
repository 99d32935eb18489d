"""Precision/recall charts (matplotlib, Agg) per label: base and tuned on one chart, the advised
Frigate min_score / threshold marked on the tuned curve. PNG bytes without a timestamp."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display; before pyplot is imported anywhere in this process
import matplotlib.pyplot as plt  # noqa: E402


def point_at_score(curve: dict, score: float) -> tuple[float, float] | None:
    """(recall, precision) of the highest-recall point whose score is still >= `score`: where the
    curve stands when Frigate drops detections below that score."""
    best = None
    for r, p, s in zip(curve.get("recall", []), curve.get("precision", []), curve.get("scores", [])):
        if s >= score and s > 0:
            best = (r, p)
    return best


def pr_chart(label: str, set_title: str, curves: dict[str, dict], marks: dict[str, float]) -> bytes:
    """`curves`: {"base": {recall, precision, scores}, "tuned": {...}}; `marks`: {"min_score": v,
    "threshold": v} drawn on the tuned curve."""
    fig, ax = plt.subplots(figsize=(3.6, 2.8), dpi=80)
    styles = {"base": dict(color="#0072B2", linestyle="--", linewidth=1.6),
              "tuned": dict(color="#D55E00", linestyle="-", linewidth=2.0)}
    for model, curve in curves.items():
        ax.plot(curve["recall"], curve["precision"], label=model, **styles.get(model, {}))
    tuned = curves.get("tuned")
    markers = {"min_score": ("o", "#000000"), "threshold": ("s", "#000000")}
    for name, value in marks.items():
        pt = point_at_score(tuned, value) if tuned else None
        if pt is None:
            continue
        m, c = markers.get(name, ("^", "#000000"))
        ax.plot([pt[0]], [pt[1]], marker=m, color=c, markersize=7, linestyle="none",
                markerfacecolor="white" if name == "min_score" else c,
                label=f"{name} {value:.2f}")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall (IoU .5)")
    ax.set_ylabel("precision")
    ax.set_title(f"{label} — {set_title}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    # metadata Software=None: no matplotlib version string, so the bytes depend on the data only
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
