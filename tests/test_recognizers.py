from __future__ import annotations

import warnings

import pytest
import torch
import torchvision

from samplerbench.core.errors import UserError
from samplerbench.core.sgd import Schedule, soft_targets
from samplerbench.formats.store import TensorFrames
from samplerbench.recognizers.backbones import FEM_ARCHS, FrameClassifier, load_weights
from samplerbench.recognizers.train import (
    _pick_frames,
    extract_outputs,
    fast_path,
    train_frame_classifier,
)


@pytest.mark.parametrize("arch", ["resnet18", *FEM_ARCHS])
def test_frame_classifier_gives_features_and_logits(arch):
    model = FrameClassifier(arch=arch, num_classes=7).eval()
    feats, logits = model(torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8))
    assert feats.shape == (2, model.feature_dim) and logits.shape == (2, 7)


def test_pick_frames_tsn_segments_stay_in_their_segment():
    picks = _pick_frames(16, torch.rand(50, 4, generator=torch.Generator().manual_seed(0)))
    assert picks.shape == (50, 4)
    for seg in range(4):
        assert picks[:, seg].min() >= 4 * seg and picks[:, seg].max() < 4 * (seg + 1)
    # T=16 in 4 parts of 4 frames: the offset places the pick inside its part
    assert _pick_frames(16, torch.tensor([[0.0, 0.5, 0.999, 0.25]])).tolist() == [[0, 6, 11, 13]]
    # T=3 < 4 segments: parts of 0.75 frames widened to 1, the last pick clamped to frame 2
    assert _pick_frames(3, torch.full((1, 4), 0.999)).tolist() == [[0, 1, 2, 2]]


def test_soft_targets_spread_over_labels():
    t = soft_targets(torch.tensor([[1.0, 0, 0], [1.0, 0, 1.0]]))
    assert torch.allclose(t, torch.tensor([[1.0, 0, 0], [0.5, 0, 0.5]]))


@pytest.mark.parametrize("segments", [1, 2])
def test_training_learns_a_separable_task(segments):
    """Class 0 frames show horizontal stripes, class 1 vertical: the loss must fall and eval must classify."""
    gen = torch.Generator().manual_seed(0)
    labels = torch.tensor([0, 1] * 24)
    stripes = (torch.arange(32) // 4 % 2).float() * 120
    pattern = torch.stack([stripes.view(32, 1).expand(32, 32), stripes.view(1, 32).expand(32, 32)])
    frames = pattern[labels].view(48, 1, 1, 32, 32) + torch.rand(48, 4, 3, 1, 1, generator=gen) * 100
    frames = (frames + torch.randn(48, 4, 3, 32, 32, generator=gen) * 10).clamp(0, 255).to(torch.uint8)
    targets = torch.nn.functional.one_hot(labels, 2).float()
    model = FrameClassifier(arch="resnet18", num_classes=2)
    heldout = torch.arange(48) // 2 % 4 == 0  # 12 rows, both classes
    schedule = Schedule(epochs=8, batch_size=8, lr=0.01, momentum=0.9, weight_decay=1e-4, nesterov=True,
                        lr_decay="one_cycle", early_stop=True, patience=8)
    fit = train_frame_classifier(model, TensorFrames(frames), targets, schedule=schedule, heldout=heldout,
                                 heldout_segments=2, segments=segments, seed=0, device="cpu", resolution=32,
                                 desc="test", workers=0)
    assert fit.epochs == 8 and len(fit.heldout) == 8 and fit.losses[-1] < fit.losses[0]
    # the held-out loss is a video's: logits of the 2 parts' centre frames (1 and 3 of T=4) averaged, and the
    # kept weights are the best monitored epoch's (the first half is warm-up)
    with torch.no_grad():
        _, centre_logits = model(frames[heldout][:, [1, 3]].flatten(0, 1))
    video_loss = torch.nn.functional.cross_entropy(centre_logits.view(12, 2, 2).mean(1), targets[heldout])
    assert fit.best_epoch >= 4 and fit.heldout[fit.best_epoch] == min(fit.heldout[4:])
    assert video_loss.item() == pytest.approx(fit.heldout[fit.best_epoch], rel=1e-4, abs=1e-6)
    feats, logits = extract_outputs(model, TensorFrames(frames), resolution=32, device="cpu", desc="test", workers=0)
    assert feats.shape == (48, 4, 512) and logits.shape == (48, 4, 2)
    assert (logits.mean(1).argmax(-1) == labels).float().mean() >= 0.9


def test_load_weights_from_a_torchvision_checkpoint(tmp_path):
    reference = torchvision.models.get_model("resnet18", num_classes=1000)
    torch.save(reference.state_dict(), tmp_path / "imagenet.pth")
    model = FrameClassifier(arch="resnet18", num_classes=5)
    missing = load_weights(model, str(tmp_path / "imagenet.pth"))
    assert missing == ["head.bias", "head.weight"]  # the 1000-class head does not fit 5 classes
    assert torch.equal(model.body.conv1.weight, reference.conv1.weight)


def test_load_weights_errors_name_the_file(tmp_path, monkeypatch):
    model = FrameClassifier(arch="mobilenet_v2", num_classes=5)
    with pytest.raises(UserError, match=r"missing.pth not found"):
        load_weights(model, str(tmp_path / "missing.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match=r"weights file .*junk.pth is not a PyTorch checkpoint file"):
        load_weights(model, str(tmp_path / "junk.pth"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    with pytest.raises(UserError, match=r"offline: put torchvision's mobilenet_v2-.*pth into"):
        load_weights(model, "imagenet")


def test_unknown_backbone_lists_valid_ones():
    with pytest.raises(UserError, match="unknown backbone 'vgg11'; valid: resnet18"):
        FrameClassifier(arch="vgg11", num_classes=3)


def test_load_weights_refuses_a_checkpoint_of_another_architecture(tmp_path):
    torch.save(torchvision.models.get_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(UserError, match=r"fits only \d+ of the \d+ tensors of resnet34's body"):
        load_weights(FrameClassifier(arch="resnet34", num_classes=5), str(tmp_path / "r18.pth"))


def test_cuda_runs_channels_last_under_bf16_autocast_and_float64_checks_stay_exact():
    """What training and extraction run on a GPU, decided without one: the model's layout and the context
    (torch warns that a CUDA autocast is disabled where there is no CUDA; only its settings are read here)."""
    warnings.filterwarnings("ignore", "User provided device_type of 'cuda'", UserWarning)
    model, autocast, fmt = fast_path(FrameClassifier(arch="resnet18", num_classes=3), "cuda:0", compile_model=False)
    assert model.body.conv1.weight.is_contiguous(memory_format=torch.channels_last) and fmt == torch.channels_last
    assert isinstance(autocast, torch.autocast) and autocast.fast_dtype == torch.bfloat16
    precise, context, fmt = fast_path(FrameClassifier(arch="resnet18", num_classes=3).double(), "cuda",
                                      compile_model=False)
    assert not isinstance(context, torch.autocast) and fmt == torch.contiguous_format
    assert not precise.body.conv1.weight.is_contiguous(memory_format=torch.channels_last)
    _, on_cpu, _ = fast_path(FrameClassifier(arch="resnet18", num_classes=3), "cpu", compile_model=False)
    assert not isinstance(on_cpu, torch.autocast)
