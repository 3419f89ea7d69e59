"""A published release of a small simulated archive (shared with the label tests)."""

from tests.labels.conftest import released, released_template  # noqa: F401
from tests.patches.conftest import planned_template  # noqa: F401
