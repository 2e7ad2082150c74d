"""Dataset adapters, registered on import: each turns a dataset on disk into :class:`VideoRecord` rows."""

from samplerbench.datasets import activitynet, bank, fcvid, listfile, minikinetics, synthetic, ucf101  # noqa: F401
from samplerbench.datasets.base import (
    DatasetIndex,
    VideoRecord,
    dataset_spec,
    get_dataset,
    list_datasets,
    register_dataset,
)

__all__ = ["DatasetIndex", "VideoRecord", "dataset_spec", "get_dataset", "list_datasets", "register_dataset"]
