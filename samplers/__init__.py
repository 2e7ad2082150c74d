"""Samplers: the interface (:mod:`.base`) and the built-in samplers, registered on import."""

from samplerbench.samplers import (  # noqa: F401
    dense,
    mgsampler,
    nsnet,
    ocsampler,
    oracle,
    random,
    scsampler,
    uniform,
)
from samplerbench.samplers.base import (
    FrameFeatures,
    Sampler,
    get_sampler,
    get_sampler_class,
    list_samplers,
    register_sampler,
)

__all__ = ["FrameFeatures", "Sampler", "get_sampler", "get_sampler_class", "list_samplers", "register_sampler"]
