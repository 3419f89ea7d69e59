"""Stage `labels`: not built yet (see the open issues and DESIGN.md)."""
