"""Samplers: the interface (:mod:`.base`) and the built-in samplers, registered on import."""

from samplerbench.samplers import (  # noqa: F401
    confidence_exit,
    dense,
    frameexit,
    mgsampler,
    nsnet,
    ocsampler,
    oracle,
    random,
    scsampler,
    uniform,
)
from samplerbench.samplers.adaptive import AdaptiveSampler, Budgeted
from samplerbench.samplers.base import (
    FrameFeatures,
    Sampler,
    get_sampler,
    get_sampler_class,
    list_samplers,
    register_sampler,
)

__all__ = ["AdaptiveSampler", "Budgeted", "FrameFeatures", "Sampler", "get_sampler", "get_sampler_class",
           "list_samplers", "register_sampler"]
