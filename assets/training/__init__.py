"""The training stage in Dagster: pretrained_encoder and benchmark_results, launched through Pipes (the
torch code is in the top-level ``training`` package)."""
