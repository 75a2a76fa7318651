"""Suite-wide: the modules holding slow tests run first, so that with several workers (`scripts/test` runs
pytest-xdist) the longest tests do not start last and hold the run while the other workers sit idle."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow_modules = {item.module.__name__ for item in items
                    if item.get_closest_marker("slow") is not None and getattr(item, "module", None) is not None}
    # stable: the order inside each group is the collection order, so module fixtures are set up once
    items.sort(key=lambda item: getattr(item, "module", None) is None or item.module.__name__ not in slow_modules)
