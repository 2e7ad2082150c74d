"""torchvision image backbones as frame classifiers that also expose their pooled features.

Both the recognizer (ResNet family) and the FEM (MobileNetV2, ShuffleNetV2, EfficientNet) are torchvision
classification models whose last ``nn.Linear`` is split off as the head, so one forward pass yields the
per-frame features (cached for samplers and prototypes) and the per-frame logits (cached for evaluation).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from samplerbench.errors import UserError

RECOGNIZER_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
FEM_ARCHS = ("mobilenet_v2", "shufflenet_v2_x1_0", "efficientnet_b0")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrameClassifier(nn.Module):
    """``body`` maps normalised images to pooled features, ``head`` maps features to class logits."""

    def __init__(self, *, arch: str, num_classes: int) -> None:
        super().__init__()
        if arch not in RECOGNIZER_ARCHS + FEM_ARCHS:
            raise UserError(f"unknown backbone {arch!r}; valid: {', '.join(RECOGNIZER_ARCHS + FEM_ARCHS)}")
        self.arch = arch
        body = torchvision.models.get_model(arch, weights=None)
        self.head_name, last = _last_linear(body)  # e.g. "fc" or "classifier.1" in torchvision's naming
        parent_name, _, attr = self.head_name.rpartition(".")
        setattr(body.get_submodule(parent_name), attr, nn.Identity())
        self.body = body
        self.feature_dim = last.in_features
        self.head = nn.Linear(last.in_features, num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalise(self, frames: Tensor) -> Tensor:
        """uint8 ``[N,3,H,W]`` -> ImageNet-normalised (what torchvision weights expect), in the model's
        floating-point type."""
        return (frames.to(self.mean.dtype) / 255.0 - self.mean) / self.std

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 frames -> (features ``[N,F]``, logits ``[N,C]``)."""
        feats = self.body(self.normalise(frames))
        return feats, self.head(feats)


def _last_linear(model: nn.Module) -> tuple[str, nn.Linear]:
    """The qualified name and module of the classifier's final ``nn.Linear``."""
    return next((n, m) for n, m in reversed(list(model.named_modules())) if isinstance(m, nn.Linear))


def _torchvision_checkpoint(arch: str) -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` (TORCH_HOME); never downloads."""
    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def load_weights(model: FrameClassifier, source: str) -> list[str]:
    """Load a local checkpoint into ``model``; returns the keys left at their initial values.

    ``source`` is a file path (a ``FrameClassifier`` state dict, or a torchvision classifier state dict such
    as an ImageNet checkpoint) or ``"imagenet"`` for torchvision's weights already in ``TORCH_HOME``. Tensors
    whose shape does not fit (an ImageNet head on a 200-class task) are skipped and reported, not forced.
    Loading uses ``weights_only=True``: a checkpoint is data, never code.
    """
    path = _torchvision_checkpoint(model.arch) if source == "imagenet" else Path(source)
    if not path.is_file():
        hint = (
            f"this machine is offline: put torchvision's {path.name} into {path.parent} (TORCH_HOME) "
            f"or pass --weights with a local file"
            if source == "imagenet"
            else "pass an existing local checkpoint file"
        )
        raise UserError(f"weights file {path} not found for {model.arch}; {hint}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt or pickled-code checkpoint: say which file
        raise UserError(f"cannot load weights {path}: {exc}") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = model.state_dict()
    renamed = {}
    for key, value in state.items():
        # A plain torchvision checkpoint has no "body." prefix and names its classifier e.g. "fc.weight".
        if key.startswith(f"{model.head_name}."):
            target = "head." + key.removeprefix(f"{model.head_name}.")
        else:
            target = key if key in own else f"body.{key}"
        if target in own and own[target].shape == value.shape:
            renamed[target] = value
    if not renamed:
        raise UserError(f"weights file {path} has no tensor that fits {model.arch}")
    model.load_state_dict(renamed, strict=False)
    return sorted(set(own) - set(renamed))
