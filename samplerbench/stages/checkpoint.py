"""Self-describing checkpoints of a run's trained models: frame classifiers (recognizer, FEM) and samplers.

A checkpoint rebuilds its model with no run config around and holds only plain data, so
``torch.load(path, weights_only=True)`` reads it: a frame classifier's role, arch, TSN variant, class names,
preprocessing, aggregation and state dict; a sampler's registry name, constructor fields, ``options``,
``state_dict()`` and the file names of the FEM and recognizer checkpoints it relies on (referenced as
siblings, not embedded, since samplers share them). Every sampler references a FEM, even one that ignores
its features (``random`` seeds from them), so it selects exactly the benchmark's frames. A ``key`` (the
stage-cache keys) identifies the content, so a re-run rewrites only changed files."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from samplerbench.config import RunConfig
from samplerbench.core.errors import UserError
from samplerbench.core.files import load_torch, save_torch
from samplerbench.formats.cache import stage_key
from samplerbench.formats.runfolder import slug
from samplerbench.recognizers.backbones import IMAGENET_MEAN, IMAGENET_STD, FrameClassifier
from samplerbench.samplers import Sampler, get_sampler_class
from samplerbench.samplers.base import constructor_fields, field_values
from samplerbench.stages.pipeline import Fitted
from samplerbench.stages.source import Outputs

FRAME_CLASSIFIER = "samplerbench/frame-classifier"
SAMPLER = "samplerbench/sampler"
FORMAT_VERSION = 2  # 2: a sampler checkpoint records what it was trained with (``trained_with``)


def state_digest(state: dict[str, torch.Tensor]) -> str:
    """A short SHA-256 of a state dict's names, dtypes, shapes and values: which weights a sampler was trained
    with, checked again when ``select`` loads them."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def classifier_filename(out: Outputs, role: str) -> str:
    """``recognizer_resnet18.pt``, ``recognizer_resnet18_tsn.pt``, ``fem_mobilenet_v2.pt``: unique in a run."""
    return f"{role}_{out.arch}{'_tsn' if out.tsn else ''}.pt"


def frame_classifier_checkpoint(out: Outputs, *, role: str, cfg: RunConfig, classes: tuple[str, ...],
                                state: dict[str, torch.Tensor]) -> dict:
    """The checkpoint of a trained recognizer or FEM (``role``), with the preprocessing of this run."""
    meta = {
        "format": FRAME_CLASSIFIER,
        "version": FORMAT_VERSION,
        "role": role,
        "arch": out.arch,
        "tsn": out.tsn,
        "num_classes": len(classes),
        "classes": list(classes),
        # how the run made a video's score from its kept frames (metrics.video_scores); select --top5 does the same
        "aggregation": cfg.sampling.aggregation,
        "preprocessing": {
            "input": "uint8 RGB frames [N, 3, H, W]; the model divides by 255 and normalises with mean/std",
            "frames": cfg.data.frames,  # T, uniformly pre-sampled (segment centres) per video
            "short_side": cfg.data.short_side,  # shorter side resized to this ...
            "crop": cfg.recognizer.res,  # ... then centre-cropped to crop x crop
            "resolution": getattr(cfg, role).res,  # then resized to this
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
        },
    }
    return {**meta, "key": stage_key("checkpoint", version=FORMAT_VERSION, outputs=out.key, meta=meta),
            "state_dict": state}


def sampler_checkpoint(sampler: Sampler, *, fem: Outputs, rec: Outputs, options: dict[str, Any],
                       digests: dict[str, str]) -> dict:
    """The checkpoint of a sampler fitted on ``fem`` and ``rec``, which it references by file name and records in
    ``trained_with`` (``digests``: their weights' :func:`state_digest` by their key); ``options`` are the run's
    ``sampling.options`` it was built with (already among its ``fields``, listed apart so that a reader sees
    what the run changed)."""
    fields = field_values(sampler)
    return {
        "format": SAMPLER,
        "version": FORMAT_VERSION,
        # The fields and the classifiers' stage keys determine the fitted state (the stage cache's own key).
        "key": stage_key("checkpoint", version=FORMAT_VERSION, sampler=sampler.name, fields=fields, fem=fem.key,
                         rec=rec.key),
        "trained_with": {"fem": trained_with(fem, digests), "recognizer": trained_with(rec, digests),
                         "frames": int(fem.val_feats.shape[1]), "fem_dim": int(fem.val_feats.shape[-1])},
        "sampler": sampler.name,
        "fields": fields,
        "options": dict(options),
        "state": sampler.state_dict(),
        "fem": classifier_filename(fem, "fem"),
        "recognizer": classifier_filename(rec, "recognizer"),
    }


def trained_with(out: Outputs, digests: dict[str, str]) -> dict[str, Any]:
    """What a sampler checkpoint records of a frame classifier it was fitted with: architecture, TSN variant and
    the digest of its weights (``digests[out.key]``)."""
    return {"arch": out.arch, "tsn": out.tsn, "digest": digests[out.key]}


def stored_key(path: Path) -> str | None:
    """The ``key`` of the checkpoint at ``path``, or ``None`` when there is none to reuse. Memory-mapped, so
    reading the key of a large checkpoint does not read its weights."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("key")
    except Exception:  # any unreadable or foreign file is simply rewritten
        return None


def load_checkpoint(path: Path | str, kind: str) -> dict:
    """A checkpoint of ``kind`` (:data:`SAMPLER` or :data:`FRAME_CLASSIFIER`), or a :class:`UserError`
    naming the file and what is wrong with it."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"checkpoint {path} not found")
    ckpt = load_torch(path, what="checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != kind:
        found = ckpt.get("format") if isinstance(ckpt, dict) else None
        raise UserError(f"{path} is not a samplerbench {kind.split('/')[1]} checkpoint (found format {found!r}); "
                        f"a run writes them into <out>/<dataset>/checkpoints/")
    return ckpt


def load_frame_classifier(path: Path | str, *, device: str, role: str) -> tuple[FrameClassifier, dict]:
    """The ``role`` model (``fem`` or ``recognizer``), in eval mode on ``device``, and its checkpoint (for the class
    names and preprocessing); a :class:`UserError` for a checkpoint of the other role or one that does not
    rebuild its model."""
    ckpt = load_checkpoint(path, FRAME_CLASSIFIER)
    if ckpt.get("role") != role:
        raise UserError(f"{path} is a {ckpt.get('role')!r} checkpoint where a {role} is needed: the checkpoints "
                        "beside a sampler checkpoint must be the run's own")
    try:
        model = FrameClassifier(arch=ckpt["arch"], num_classes=ckpt["num_classes"])
        model.to(ckpt["state_dict"]["head.weight"].dtype)  # a --dtype float64 run's model stays float64
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise UserError(f"{path}: its fields do not rebuild a {ckpt.get('arch')!r} model ({_first_line(exc)}); a "
                        "hand-edited or foreign checkpoint? use the one the run wrote") from None
    return model.to(device).eval(), ckpt


def check_trained_with(path: Path, ckpt: dict, *, fem: tuple[FrameClassifier, dict],
                       recognizer: tuple[FrameClassifier, dict]) -> None:
    """A :class:`UserError` when the FEM and recognizer checkpoints beside the sampler checkpoint ``path`` are not
    the ones it was trained with (architecture, weights' digest, T, the FEM's width), or when it does not say."""
    record = ckpt.get("trained_with")
    if not isinstance(record, dict):
        raise UserError(f"{path} does not record the FEM and recognizer it was trained with (a checkpoint of an "
                        "older samplerbench, or edited): run the benchmark again to rewrite it")
    found = {"fem": fem, "recognizer": recognizer}
    for role, (model, own) in found.items():
        wanted, have = record.get(role) or {}, {"arch": model.arch, "tsn": own.get("tsn"),
                                                "digest": state_digest(own["state_dict"])}
        for field in ("arch", "tsn", "digest"):
            if wanted.get(field) != have[field]:
                raise UserError(f"{path} was trained with a {role} of {field} {wanted.get(field)!r}, but "
                                f"{path.parent / ckpt[role]} has {have[field]!r}: a checkpoint copied from another "
                                "run? keep each sampler checkpoint beside its own run's FEM and recognizer")
    frames, width = recognizer[1]["preprocessing"]["frames"], fem[0].feature_dim
    for what, wanted, have in (("T", record.get("frames"), frames), ("FEM width", record.get("fem_dim"), width)):
        if wanted != have:
            raise UserError(f"{path} was trained with {what} = {wanted!r}, but its FEM and recognizer give {have!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def build_sampler(ckpt: dict, *, device: str, path: Path) -> Sampler:
    """The sampler of a sampler checkpoint, constructed from its fields and loaded with its state; a
    :class:`UserError` naming ``path`` when they do not make one (a hand-edited or foreign checkpoint)."""
    name = ckpt.get("sampler")
    if not isinstance(name, str) or not isinstance(ckpt.get("fields"), dict):
        raise UserError(f"{path}: no sampler name and fields; a hand-edited or foreign checkpoint?")
    try:
        cls = get_sampler_class(name)
        kwargs = dict(ckpt["fields"])
        if "device" in constructor_fields(cls):
            kwargs["device"] = device
        sampler = cls(**kwargs)
        sampler.load_state_dict(ckpt.get("state"))
    except UserError as exc:
        raise UserError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise UserError(f"{path}: its fields and state do not make a {name!r} sampler ({_first_line(exc)}); a "
                        "hand-edited or foreign checkpoint? use the one the run wrote") from None
    return sampler


def sampler_label(fitted: Fitted, *, fem: Outputs, rec: Outputs) -> str:
    """``nsnet``, ``nsnet no_ns=True``, ``nsnet fem=efficientnet_b0``, ``uniform recognizer=resnet34+tsn``: the
    sampler, its non-default options, and its FEM / recognizer where they are not the run's main ones (the
    ablation tables fit samplers on those)."""
    parts = [fitted.name, *(f"{k}={v}" for k, v in sorted(fitted.fields.items()))]
    if fitted.fem.key != fem.key:
        parts.append(f"fem={fitted.fem.arch}")
    if fitted.rec.key != rec.key:
        parts.append(f"recognizer={fitted.rec.arch}{'+tsn' if fitted.rec.tsn else ''}")
    return " ".join(parts)


def _save_checkpoint(path: Path, ckpt: dict, previous: Path) -> bool:
    """Write ``ckpt`` to ``path``, or hard-link ``previous`` there (a copy where links are refused) when that
    already holds the same content (same key); whether it was written."""
    if stored_key(previous) != ckpt["key"]:
        save_torch(path, ckpt)
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(previous, path)
    except OSError:
        shutil.copy2(previous, path)
    return False


def write_checkpoints(folder: Path, fitted: list[Fitted], *, previous: Path, cfg: RunConfig,
                      classes: tuple[str, ...], fem: Outputs, rec: Outputs) -> tuple[list[dict], int]:
    """A checkpoint of every fitted sampler and of each FEM and recognizer they rely on, in the empty ``folder``.
    Returns the listing for ``run.json`` and the number of files written; a checkpoint ``previous`` already
    holds with the same content is linked, not written."""
    rel = f"{folder.name}/"
    classifiers: dict[str, tuple[str, Outputs]] = {}
    for f in fitted:
        classifiers.setdefault(classifier_filename(f.fem, "fem"), ("fem", f.fem))
        classifiers.setdefault(classifier_filename(f.rec, "recognizer"), ("recognizer", f.rec))
    entries, written, digests = [], 0, {}
    for name, (role, out) in classifiers.items():
        state = {k: v.detach().cpu() for k, v in out.model.state_dict().items()}
        digests[out.key] = state_digest(state)
        written += _save_checkpoint(folder / name, frame_classifier_checkpoint(out, role=role, cfg=cfg,
                                                                              classes=classes, state=state),
                                    previous / name)
        entries.append({"file": rel + name, "kind": role, "arch": out.arch, "tsn": out.tsn})
    for f in fitted:
        label = sampler_label(f, fem=fem, rec=rec)
        ckpt = sampler_checkpoint(f.sampler, fem=f.fem, rec=f.rec, options=f.options, digests=digests)
        name = f"{slug(label)}.pt"
        written += _save_checkpoint(folder / name, ckpt, previous / name)
        entries.append({"file": rel + name, "kind": "sampler", "label": label, "sampler": f.name,
                        "fields": f.fields, "options": f.options, "fem": rel + ckpt["fem"],
                        "recognizer": rel + ckpt["recognizer"],
                        "selects_new_videos": not (f.sampler.uses_labels_at_eval or f.sampler.reads_recognizer)})
    return entries, written
