"""The training schedules a run's config sets, built in one place: the backbones' (:func:`backbone_schedule`) and
what it changes of every trainable sampler's own (:func:`sampler_override`)."""

from __future__ import annotations

from samplerbench.config.schema import WEIGHT_ROLES, RunConfig
from samplerbench.core.sgd import Schedule, ScheduleOverride


def backbone_schedule(cfg: RunConfig, role: str) -> Schedule:
    """How the ``role`` backbone (one of :data:`~samplerbench.config.schema.WEIGHT_ROLES`: the recognizer or the
    FEM, whatever its architecture) trains: SGD with Nesterov momentum 0.9 and weight decay 1e-4 in batches of its
    ``batch``, a one-cycle learning rate peaking at its ``lr`` over its ``epochs``, and the suite's held-out rule
    (the run's ``holdout_fraction`` and ``patience``)."""
    if role not in WEIGHT_ROLES:
        raise ValueError(f"backbone role {role!r}: valid: {', '.join(WEIGHT_ROLES)}")
    net = getattr(cfg, role)
    return Schedule(epochs=net.epochs, batch_size=net.batch, lr=net.lr, momentum=0.9, weight_decay=1e-4,
                    nesterov=True, lr_decay="one_cycle", early_stop=True, patience=cfg.patience,
                    holdout_fraction=cfg.holdout_fraction)


def sampler_override(cfg: RunConfig) -> ScheduleOverride:
    """What the run changes of every trainable sampler's schedule: ``sampling.epochs``, ``batch`` and ``lr`` where
    set, and with ``sampling.early_stop`` the suite's held-out rule with the run's ``patience`` and
    ``holdout_fraction``; nothing else (each sampler keeps its paper's)."""
    sampling = cfg.sampling
    held_out = (dict(early_stop=True, patience=cfg.patience, holdout_fraction=cfg.holdout_fraction)
                if sampling.early_stop else {})
    return ScheduleOverride(epochs=sampling.epochs, batch_size=sampling.batch, lr=sampling.lr, **held_out)
