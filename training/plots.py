"""What a training run shows of its loss: a table for the Dagster UI and a PNG beside the checkpoint."""

from __future__ import annotations


def loss_curve_png(history: list[dict], path, width_px: int = 560) -> None:
    """Loss per epoch as a PNG file beside the checkpoint."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    epochs = [row["epoch"] for row in history]
    losses = [row["loss"] for row in history]
    fig, ax = plt.subplots(figsize=(width_px / 100, 2.6), dpi=100)
    ax.plot(epochs, losses, marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def loss_table_markdown(history: list[dict]) -> str:
    """The loss curve as a Markdown table (Pipes messages are lines of JSON: an inline image in
    one made the Dagster side read a partial line, so the picture goes to a file instead)."""
    rows = "\n".join(f"| {r['epoch']} | {r['loss']:.4f} | {r['images_per_s']} |" for r in history)
    return f"| epoch | loss | images/s |\n|---:|---:|---:|\n{rows}"
