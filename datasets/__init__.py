"""Dataset adapters, registered on import: each turns a dataset on disk into :class:`VideoRecord` rows."""

from samplerbench.datasets import activitynet, bank, fcvid, listfile, minikinetics, synthetic, ucf101  # noqa: F401
from samplerbench.datasets.base import (
    DatasetIndex,
    DatasetOptions,
    VideoRecord,
    dataset_options,
    dataset_spec,
    get_dataset,
    list_datasets,
    preset_layer,
    register_dataset,
    run_options,
)

__all__ = ["DatasetIndex", "DatasetOptions", "VideoRecord", "dataset_options", "dataset_spec", "get_dataset",
           "list_datasets", "preset_layer", "register_dataset", "run_options"]
