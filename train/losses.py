"""The loss registry: name → how to build it, which data kinds (canonical column sets) it consumes, and how
batches must be drawn. Columns are passed to the loss in the order the kind declares, never the file's order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer import losses

from configs.errors import UserError
from data.sources import KINDS, kind_columns


@dataclass(frozen=True)
class LossSpec:
    build: Callable  # (model, loss config) -> torch.nn.Module
    kinds: tuple[str, ...]  # data kinds whose columns it consumes, see data.sources.KINDS
    batch_sampler: BatchSamplers = BatchSamplers.BATCH_SAMPLER


LOSSES: dict[str, LossSpec] = {
    # (sentence1, sentence2) → cosine, regressed onto score in 0..1
    "cosine": LossSpec(lambda m, c: losses.CosineSimilarityLoss(m), ("scored",)),
    # (sentence1, sentence2, score): every higher-scored pair should out-rank every lower-scored one
    "cosent": LossSpec(lambda m, c: losses.CoSENTLoss(m, scale=c.scale), ("scored",)),
    # (anchor, positive[, negative]); the other rows' positives are the negatives, so no duplicates in a batch
    "mnrl": LossSpec(
        lambda m, c: losses.MultipleNegativesRankingLoss(m, scale=c.scale),
        ("pairs", "triplets"),
        BatchSamplers.NO_DUPLICATES,
    ),
    # (sentence1, sentence2, label 0/1)
    "contrastive": LossSpec(lambda m, c: losses.ContrastiveLoss(m, margin=c.margin), ("labeled",)),
    "online_contrastive": LossSpec(lambda m, c: losses.OnlineContrastiveLoss(m, margin=c.margin), ("labeled",)),
    # (anchor, positive, negative)
    "triplet": LossSpec(lambda m, c: losses.TripletLoss(m, triplet_margin=c.margin), ("triplets",)),
    # (text, label): triplets are formed inside each batch, so each batch needs several texts of several classes
    "batch_all_triplet": LossSpec(lambda m, c: losses.BatchAllTripletLoss(m, margin=c.margin), ("classes",),
                                  BatchSamplers.GROUP_BY_LABEL),
}


def check_fit(loss_name: str, kind: str, origin: str) -> LossSpec:
    """The spec of ``loss_name``, or an error (before any training) when the data's columns do not fit it."""
    spec = LOSSES[loss_name]
    if kind not in spec.kinds:
        wanted = " or ".join("(" + ", ".join(KINDS[k]) + ")" for k in spec.kinds)
        fitting = sorted(name for name, s in LOSSES.items() if kind in s.kinds)
        raise UserError(
            f"loss '{loss_name}' consumes columns {wanted}, but {origin} has ({', '.join(KINDS[kind])}). "
            f"Losses that fit this data: {', '.join(fitting)}; or map other columns with data.train.columns."
        )
    return spec


def training_columns(kind: str, columns) -> list[str]:
    """Columns handed to the trainer, in the order the loss reads them (label last, as sentence-transformers
    expects)."""
    return kind_columns(kind, columns)
