"""The tables a run writes, each registered from its own module (:mod:`.registry`): the main comparison
(:mod:`.main`), then the NSNet paper's ablations (:mod:`.paper`). Importing the package registers them, in this
order: the order of :data:`TABLES` and of the tables a run writes."""

from samplerbench.tables import main, paper  # noqa: F401
from samplerbench.tables.registry import (
    TABLES,
    TableSpec,
    build_tables,
    chosen_tables,
    extra_networks,
    frameless_notes,
    register_table,
    run_tables,
    trained_backbones,
)

__all__ = ["TABLES", "TableSpec", "build_tables", "chosen_tables", "extra_networks", "frameless_notes",
           "register_table", "run_tables", "trained_backbones"]
