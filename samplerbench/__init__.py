"""samplerbench: train and compare frame samplers for efficient untrimmed-video recognition."""

from samplerbench.samplers import FrameFeatures, Sampler, get_sampler, list_samplers, register_sampler

__all__ = ["FrameFeatures", "Sampler", "get_sampler", "list_samplers", "register_sampler"]
