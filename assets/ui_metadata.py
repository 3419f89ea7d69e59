"""Dagster metadata helpers shared by the stages' ``defs.py`` (Dagster-side, like ``resources``)."""

import base64

from dagster import MetadataValue


def png_markdown(png: bytes, alt: str, below: str = "") -> MetadataValue:
    """A PNG shown inline in the asset's metadata (kept small: it lives in the event log)."""
    image = f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
    return MetadataValue.md(f"{image}\n\n{below}" if below else image)
