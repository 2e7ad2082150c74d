"""The run configuration: its schema (:mod:`.schema`), presets and how a config is built (:mod:`.presets`), config
files (:mod:`.files`), the keys of older configs (:mod:`.legacy`) and the training schedules a config sets
(:mod:`.schedules`). Every part of the suite reads a :class:`RunConfig`."""

from samplerbench.config.files import load_config_file, run_config
from samplerbench.config.legacy import LEGACY_KEYS, nest_legacy, put_weights
from samplerbench.config.presets import PRESETS, SMOKE_TEST_PRESETS, build_config, merge
from samplerbench.config.schedules import backbone_schedule, sampler_override
from samplerbench.config.schema import (
    DECODERS,
    DTYPES,
    NO_WEIGHTS,
    OUTPUT_SETTINGS,
    WEIGHT_ROLES,
    BackboneConfig,
    CostConfig,
    DataConfig,
    Network,
    ReportConfig,
    RunConfig,
    SamplingConfig,
)

__all__ = [
    "DECODERS", "DTYPES", "LEGACY_KEYS", "NO_WEIGHTS", "OUTPUT_SETTINGS", "PRESETS", "SMOKE_TEST_PRESETS",
    "WEIGHT_ROLES", "BackboneConfig", "CostConfig", "DataConfig", "Network", "ReportConfig", "RunConfig",
    "SamplingConfig", "backbone_schedule", "build_config", "load_config_file", "merge", "nest_legacy", "put_weights",
    "run_config", "sampler_override",
]
