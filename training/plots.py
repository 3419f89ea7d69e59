"""What a training run shows of its loss: a table with bars for the Dagster UI, a PNG beside the
checkpoint, and a note that says why when the loss ends above where it started."""

from __future__ import annotations

from dataclasses import dataclass

BAR_WIDTH = 24


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
    """The loss curve as a Markdown table with a bar per epoch, so that the UI shows its shape (Pipes
    messages are lines of JSON: an inline image in one made the Dagster side read a partial line, so
    the picture goes to a file instead). Bars span the losses' range: the lowest gets one block."""
    losses = [r["loss"] for r in history]
    low, high = min(losses, default=0.0), max(losses, default=0.0)

    def bar(loss: float) -> str:
        share = (loss - low) / (high - low) if high > low else 1.0
        return "█" * (1 + round(share * (BAR_WIDTH - 1)))

    rows = "\n".join(
        f"| {r['epoch']} | {r['loss']:.4f} | {bar(r['loss'])} | {r['images_per_s']} |" for r in history
    )
    return f"| epoch | loss | | images/s |\n|---:|---:|---|---:|\n{rows}"


@dataclass(frozen=True)
class RunShape:
    """What a run's loss depends on besides the encoder: its size and the method's moving parts."""

    method: str
    locations: int
    steps_per_epoch: int
    batch_size: int
    warmup_epochs: int
    queue_size: int = 0
    """MoCo: negatives in the queue (0: no queue)."""
    keys_per_step: int = 0
    """MoCo: keys entering the queue per step (the batch, twice when symmetric)."""
    momentum: float = 0.0
    """MoCo's key encoder or DINO's teacher: the share of the old weights kept per step."""

    @classmethod
    def of(cls, method, name: str, locations: int, steps_per_epoch: int, batch_size: int, warmup: int):
        """The shape of a run of ``method`` (the built MoCoV2, DINO, MAE, ... module)."""
        queue = getattr(method, "queue", None)
        per_step = batch_size * (2 if getattr(method, "symmetric", False) else 1)
        return cls(
            name,
            locations,
            steps_per_epoch,
            batch_size,
            warmup,
            queue_size=int(queue.shape[0]) if queue is not None else 0,
            keys_per_step=per_step if queue is not None else 0,
            momentum=float(getattr(method, "momentum", 0.0) or 0.0),
        )


def loss_note(history: list[dict], shape: RunShape) -> str | None:
    """Why the loss rose, when it ended above where it started; None otherwise.

    Measured on the demo's smoke run (MoCo-v2, queue of 256, batch 8, 59 locations, 3 epochs of 7
    steps; the loss rose from 3.08 to 4.18), scoring the same batches without training: the untrained
    model gets 1.43 against a queue of random vectors (what the queue holds at step 0) and 4.68
    against a queue full of real keys; the trained model gets 4.60 against real keys. The encoder got
    slightly better at a task that got much harder as the queue filled.
    """
    if len(history) < 2 or not history[-1]["loss"] > history[0]["loss"]:
        return None
    steps = shape.steps_per_epoch * len(history)
    parts = [
        f"The loss rose from {history[0]['loss']:.3f} to {history[-1]['loss']:.3f} over {steps} steps "
        f"({len(history)} epochs of {shape.steps_per_epoch} on {shape.locations} locations)."
    ]
    if shape.queue_size:
        real = min(steps * shape.keys_per_step, shape.queue_size)
        fill = -(-shape.queue_size // max(shape.keys_per_step, 1))
        parts.append(
            f"MoCo's queue of {shape.queue_size} negatives starts as random vectors, which are easy to "
            f"tell from the positive, and takes {shape.keys_per_step} real keys a step: by the end "
            f"{real} of its entries were real keys ({fill} steps fill it), and with {shape.locations} "
            f"locations a full queue holds {shape.queue_size / max(shape.locations, 1):.1f} keys of every "
            "location, so a query meets keys of its own location among its negatives."
        )
    if shape.momentum:
        kept = shape.momentum**steps
        target = "key encoder" if shape.queue_size else "teacher"
        parts.append(
            f"The {target} follows the trained network with momentum {shape.momentum}: after {steps} steps "
            f"it is still {kept:.0%} the initial network."
        )
    if shape.warmup_epochs:
        parts.append(
            f"The learning rate warms up over the first {shape.warmup_epochs} epoch(s), so later epochs "
            "take larger steps."
        )
    parts.append(
        "The task gets harder as the run proceeds: over a run this short a rising loss is expected and "
        "says nothing about the encoder; judge it by benchmark_results, or train for many more steps."
        if shape.queue_size or shape.momentum
        else f"{steps} steps are too few for the loss to settle; train for more epochs or lower the "
        "learning rate."
    )
    return " ".join(parts)
