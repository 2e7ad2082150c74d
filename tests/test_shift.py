"""Temporal random shift per epoch: each epoch, each segment of a training video is frame t of one of its
decoded views, drawn for that epoch and segment; worked by hand for two epochs, and seen by a training sampler."""

from __future__ import annotations

import torch

from samplerbench.samplers import FrameFeatures, get_sampler
from samplerbench.samplers.shift import shift_views, shifted_rows, video_runs
from samplerbench.samplers.training import epoch_generator

T, C = 4, 2


def views_bank() -> FrameFeatures:
    """Video "a" decoded in 3 views (rows 0-2), video "b" in 2 (rows 3-4); feature 10·row + t names each frame."""
    rows = torch.arange(5, dtype=torch.float32)
    fem = (10 * rows[:, None] + torch.arange(T))[..., None]  # [5, T, 1]
    labels = torch.tensor([[1.0, 0]] * 3 + [[0, 1.0]] * 2)
    return FrameFeatures(fem=fem, num_classes=C, labels=labels, rec_logits=fem.expand(5, T, C).clone(),
                     rec_feats=-fem, video_ids=("a", "a", "a", "b", "b"))


def test_views_are_drawn_per_epoch_and_segment_by_hand():
    """Epoch 0 of seed 0 draws u = [.9701 .7078 .4594 .9207] for "a" and [.6450 .7911 .1786 .3511] for "b":
    views ⌊3u⌋ = 2 2 1 2 and ⌊2u⌋ = 1 1 0 0, i.e. rows 2 2 1 2 and 4 4 3 3. Epoch 1 draws
    [.0611 .2246 .2343 .1771] and [.5561 .1094 .4609 .7084]: rows 0 0 0 0 and 4 3 3 4."""
    bank = views_bank()
    starts, counts = video_runs(bank)
    assert starts.tolist() == [0, 3] and counts.tolist() == [3, 2]
    assert shifted_rows(starts, counts, T, epoch_generator(0, 0)).tolist() == [[2, 2, 1, 2], [4, 4, 3, 3]]
    assert shifted_rows(starts, counts, T, epoch_generator(0, 1)).tolist() == [[0, 0, 0, 0], [4, 3, 3, 4]]
    epoch0 = shift_views(bank, epoch_generator(0, 0))
    assert epoch0.fem[..., 0].tolist() == [[20, 21, 12, 23], [40, 41, 32, 33]]  # frame t of the drawn row
    assert torch.equal(epoch0.rec_logits, epoch0.fem.expand(2, T, C)) and torch.equal(epoch0.rec_feats, -epoch0.fem)
    assert epoch0.labels.tolist() == [[1, 0], [0, 1]] and epoch0.video_ids == ("a", "b")
    assert torch.equal(shift_views(bank, epoch_generator(0, 0)).fem, epoch0.fem)  # a function of (seed, epoch)


def test_every_view_is_drawn_evenly_over_epochs():
    bank = views_bank()
    starts, counts = video_runs(bank)
    drawn = torch.stack([shifted_rows(starts, counts, T, epoch_generator(3, e)) for e in range(600)])
    for row in range(3):
        assert abs((drawn[:, 0] == row).float().mean().item() - 1 / 3) < 0.03
    assert abs((drawn[:, 1] == 3).float().mean().item() - 1 / 2) < 0.03


def test_one_view_per_video_is_the_bank_itself():
    bank = FrameFeatures(fem=torch.rand(3, T, 2), num_classes=C, video_ids=("a", "b", "c"))
    assert shift_views(bank, epoch_generator(0, 0)) is bank
    without_ids = FrameFeatures(fem=torch.rand(3, T, 2), num_classes=C)
    assert video_runs(without_ids)[1].tolist() == [1, 1, 1]


def test_a_training_sampler_sees_one_shifted_row_per_video_each_epoch():
    """With ``temporal_shift`` (the default) each epoch's tensors have one row per video, drawn anew; without
    it every decoded view is a row of every epoch."""
    bank = views_bank()
    for shift, rows in ((True, 2), (False, 5)):  # the paper's schedule trains on every video, none held out
        sampler = get_sampler("scsampler", epochs=3, batch_size=2, seed=0, temporal_shift=shift)
        seen = []
        original = sampler.training_tensors

        def recording(train, *, draws, original=original, seen=seen):
            seen.append(train.fem[..., 0].clone())
            return original(train, draws=draws)

        sampler.training_tensors = recording
        sampler.fit(bank)
        epochs = seen
        assert [s.shape[0] for s in epochs] == [rows] * 3
        assert shift == (not torch.equal(epochs[0], epochs[1]))
