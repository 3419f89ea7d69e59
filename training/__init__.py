"""Models, self-supervised methods, data loading and benchmark protocols (later issues)."""
