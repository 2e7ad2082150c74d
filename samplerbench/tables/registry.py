"""The registry of tables: each table registers itself from its own module with :func:`register_table`, and a run
writes every registered table its config chooses and its samplers allow (:func:`run_tables`).

A table's spec says what the run must know before computing anything: the samplers it needs, the backbones it
trains on decoded frames (a run without decoded frames, on a frame bank, leaves it out), and how to build, title
and explain its rows. The report writes any table a run hands it."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from samplerbench.config import WEIGHT_ROLES, Network, RunConfig
from samplerbench.core.registry import Registry
from samplerbench.evaluation.evaluator import Evaluator
from samplerbench.evaluation.result import Table

Rows = Callable[[Evaluator], list[dict]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TableSpec:
    """A registered table.

    Attributes:
        name: its registry name (``--tables``) and its key in run.json's ``tables``.
        filename: its file in the run folder.
        title: its Markdown title; ``{k}`` stands for the run's main budget.
        note: the text under its title, or a function of the run's :class:`Evaluator` for a note that depends on
            the run.
        needs: the samplers a run must compare for the table to be written.
        trains: the backbones it trains on decoded frames besides the run's own, from the config; ``None`` for a
            table that trains none.
        rows: builds its rows; ``None`` for a table the run computes itself (the main comparison, Fig. 1).
    """

    name: str
    filename: str = ""
    title: str = ""
    note: str | Callable[[Evaluator], str] = ""
    needs: frozenset[str] = frozenset()
    trains: Callable[[RunConfig], list[Network]] | None = None
    rows: Rows | None = None

    @property
    def needs_frames(self) -> bool:
        """It trains backbones on decoded frames, which a frame bank does not hold."""
        return self.trains is not None


TABLES: Registry[TableSpec] = Registry("table")  # in registration order: the order a run writes them in


def register_table(name: str, *, filename: str, title: str, note: str | Callable[[Evaluator], str] = "",
                   needs: Iterable[str] = (), trains: Callable[[RunConfig], list[Network]] | None = None,
                   ) -> Callable[[Rows], Rows]:
    """Function decorator: registers table ``name`` (see :class:`TableSpec`), whose rows the decorated function
    builds from the run's :class:`Evaluator`. A name can be registered once."""

    def wrap(fn: Rows) -> Rows:
        TABLES.register(name, TableSpec(name=name, filename=filename, title=title, note=note, needs=frozenset(needs),
                                        trains=trains, rows=fn))
        return fn

    return wrap


def chosen_tables(cfg: RunConfig) -> list[TableSpec]:
    """The tables ``cfg.report.tables`` names (every registered table when it names none), in registry order; an
    unknown name is a one-line :class:`~samplerbench.core.errors.UserError`."""
    for name in cfg.report.tables:
        TABLES.get(name)  # an unknown name fails here
    chosen = set(cfg.report.tables)
    return [spec for name, spec in TABLES.items() if not chosen or name in chosen]


def run_tables(cfg: RunConfig, samplers: Iterable[str], *, frames: bool = True) -> list[TableSpec]:
    """The tables a run comparing ``samplers`` writes: the chosen ones (:func:`chosen_tables`) whose needed samplers
    it compares; without decoded ``frames`` (a frame bank), none that trains backbones on them."""
    compared = set(samplers)
    return [spec for spec in chosen_tables(cfg) if spec.needs <= compared and (frames or not spec.needs_frames)]


def frameless_notes(cfg: RunConfig, *, frames: bool) -> list[str]:
    """The line a run without decoded ``frames`` (on a frame bank) adds about the chosen tables it leaves out."""
    left_out = [] if frames else [spec.name for spec in chosen_tables(cfg) if spec.needs_frames]
    return [f"frame bank: table(s) {', '.join(left_out)} left out: they train backbones on decoded frames"
            ] if left_out else []


def extra_networks(cfg: RunConfig, tables: Iterable[TableSpec]) -> list[Network]:
    """Every backbone ``tables`` train besides the run's own, in order."""
    return [network for spec in tables if spec.trains is not None for network in spec.trains(cfg)]


def trained_backbones(cfg: RunConfig, tables: Iterable[TableSpec]) -> dict[str, list[str]]:
    """Role -> every architecture a run writing ``tables`` trains for it: the run's own, then the tables'."""
    backbones = {role: [getattr(cfg, role).arch] for role in WEIGHT_ROLES}
    for role, arch, _ in extra_networks(cfg, tables):
        backbones[role].append(arch)
    return backbones


def build_tables(b: Evaluator, tables: Iterable[TableSpec]) -> list[Table]:
    """The :class:`Table` of each of ``tables`` that has rows, in order: titled, explained and built for the run of
    ``b``."""
    k = b.cfg.sampling.main_budget
    return [Table(name=spec.name, filename=spec.filename, title=spec.title.format(k=k),
                  note=spec.note(b) if callable(spec.note) else spec.note, rows=spec.rows(b))
            for spec in tables if spec.rows is not None]
