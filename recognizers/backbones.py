"""torchvision image backbones as frame classifiers that also expose their pooled features (the last
``nn.Linear`` is split off as the head, so one pass yields features and logits)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from samplerbench.core.errors import UserError
from samplerbench.core.files import load_torch

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


IMAGENET = "imagenet"  # a weights source: each architecture's own torchvision ImageNet file in TORCH_HOME


def imagenet_file(arch: str) -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` (its ``DEFAULT`` weights):
    ``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``. Never downloads."""
    url = torchvision.models.get_model_weights(arch).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name


def weights_file(arch: str, source: str) -> Path:
    """The file a weights ``source`` names for ``arch``: :func:`imagenet_file` for ``"imagenet"``, else the
    path itself (one checkpoint for every architecture it is given to)."""
    return imagenet_file(arch) if source == IMAGENET else Path(source)


def weights_identity(arch: str, source: str | None) -> str | list | None:
    """What a training stage's cache key records of where ``arch`` starts: the file's name for ImageNet
    weights (torchvision changes its ``DEFAULT`` file between releases), and a local file's path, size and
    modification time (a retrained checkpoint under the same name); ``None`` from scratch."""
    if source is None:
        return None
    path = weights_file(arch, source)
    if source == IMAGENET:
        return f"{IMAGENET}:{path.name}"
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def fetch_command(archs: Iterable[str]) -> str:
    """The shell command that downloads the ImageNet files of ``archs`` into this process's TORCH_HOME (run it
    on a machine with internet; the files land in ``$TORCH_HOME/hub/checkpoints``, as :func:`imagenet_file`
    expects)."""
    home = Path(torch.hub.get_dir()).parent  # get_dir() is $TORCH_HOME/hub
    calls = "; ".join(f"torchvision.models.get_model({arch!r}, weights='DEFAULT')" for arch in dict.fromkeys(archs))
    return f'TORCH_HOME={shlex.quote(str(home))} python -c "import torchvision; {calls}"'


def require_weights(wanted: Iterable[tuple[str, str]]) -> None:
    """Raise one :class:`UserError` naming every missing file among ``(arch, source)`` pairs
    (:func:`require_files`), or the first file that is not weights of its architecture (:func:`read_weights`,
    :func:`fit_weights`); or return. A run calls it before its first stage."""
    wanted = list(wanted)
    require_files(wanted)
    for arch, source in dict.fromkeys(wanted):
        path = weights_file(arch, source)
        fit_weights(FrameClassifier(arch=arch, num_classes=1), path, read_weights(path))


def require_files(wanted: Iterable[tuple[str, str]]) -> None:
    """Raise one :class:`UserError` naming every missing file among ``(arch, source)`` pairs (with the command
    that fetches ImageNet files: nothing is downloaded here), or return."""
    missing = {weights_file(arch, source): (arch, source) for arch, source in wanted}
    missing = {path: pair for path, pair in missing.items() if not path.exists()}
    imagenet = [arch for arch, source in missing.values() if source == IMAGENET]
    local = [f"{path} not found ({arch})" for path, (arch, source) in missing.items() if source != IMAGENET]
    problems = [f"weights file {', '.join(local)}; pass existing local checkpoint files"] if local else []
    if imagenet:
        files = [imagenet_file(arch) for arch in imagenet]
        problems.append(
            f"ImageNet weights {', '.join(map(str, files))} not found; samplerbench never downloads, so that runs "
            f"work offline: put torchvision's {', '.join(f.name for f in files)} into {files[0].parent} "
            f"(on a machine with internet, {fetch_command(imagenet)} writes them there; copy them over if that is "
            f"another machine), or train from scratch with --weights none")
    if problems:
        raise UserError("; ".join(problems))


def read_weights(path: Path) -> dict[str, Tensor]:
    """The tensors of the checkpoint file ``path`` (a state dict, or one under ``"state_dict"``), loaded with
    ``weights_only=True``; a :class:`UserError` saying what the file is instead (:func:`load_torch`; no tensors)."""
    state = load_torch(path, what="weights file")
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not any(isinstance(v, Tensor) for v in state.values()):
        raise UserError(f"weights file {path} holds a {type(state).__name__} without tensors, not a state dict")
    return state


def fit_weights(model: FrameClassifier, path: Path, state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The tensors of ``state`` renamed to ``model``'s keys, where their shapes fit; a head of the wrong shape is
    left out, and a :class:`UserError` says when ``state`` does not cover the body of ``model.arch``."""
    own = model.state_dict()
    renamed = {}
    for key, value in state.items():
        # A plain torchvision checkpoint has no "body." prefix and names its classifier e.g. "fc.weight".
        if key.startswith(f"{model.head_name}."):
            target = "head." + key.removeprefix(f"{model.head_name}.")
        else:
            target = key if key in own else f"body.{key}"
        if target in own and isinstance(value, Tensor) and own[target].shape == value.shape:
            renamed[target] = value
    if not renamed:
        raise UserError(f"weights file {path} has no tensor that fits {model.arch}")
    body = [k for k in own if k.startswith("body.") and not k.endswith("num_batches_tracked")]
    missing = [k for k in body if k not in renamed]
    if missing:  # e.g. one ResNet-101 file given for Table 4's ResNet-152 too: half its layers would stay random
        raise UserError(f"weights file {path} fits only {len(body) - len(missing)} of the {len(body)} tensors of "
                        f"{model.arch}'s body (first missing: {missing[0]}): give a checkpoint of that architecture, "
                        f"imagenet, or none")
    return renamed


def load_weights(model: FrameClassifier, source: str) -> list[str]:
    """Load a local checkpoint (a state dict file, or ``"imagenet"`` from ``TORCH_HOME``) into ``model`` with
    ``weights_only=True``; returns the keys left at their initial values. A head of the wrong shape is skipped
    and reported; an incomplete body is an error."""
    require_files([(model.arch, source)])
    path = weights_file(model.arch, source)
    renamed = fit_weights(model, path, read_weights(path))
    own = model.state_dict()
    model.load_state_dict(renamed, strict=False)
    return sorted(set(own) - set(renamed))
