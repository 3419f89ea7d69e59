"""The Dagster code location of SpectralForge (``dagster dev -m pipelines.definitions``).

Loading it must not print Dagster's beta notices on every CLI command and in every run's log
(seven of them, for APIs this project uses on purpose and pins with ``dagster==1.13.27``), so
they are filtered here, before any stage module is imported, each by name:

- ``backfill_policy`` of ``@asset``: the per-tile assets run a range of partitions per run
  (``tile_quality``, ``tile_patches``, per sensor);
- ``observable_source_asset``: the label sources, observed for their data versions;
- ``with_source_code_references`` and the ``LocalFileCodeReference`` and
  ``CodeReferencesMetadataValue`` it builds: the links to source on every asset
  (``pipelines.asset_attributes``).

Any other beta or preview API still warns, so that nobody adopts one without seeing it.
"""

import warnings

from dagster import BetaWarning

for _api in (
    "Parameter `backfill_policy` of function `asset`",
    "Function `observable_source_asset`",
    "Function `with_source_code_references`",
    "Class `LocalFileCodeReference`",
    "Class `CodeReferencesMetadataValue`",
):
    warnings.filterwarnings("ignore", message=f"{_api} is currently in beta", category=BetaWarning)
