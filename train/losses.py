"""The loss registry: name → how to build it, which data kinds (canonical column sets) it consumes, and how
batches must be drawn. Columns are passed to the loss in the order the kind declares, never the file's order.

A spec owns its loss end to end: ``spec.build(model, loss_config)`` makes the library loss, adds what every loss
shares (``matryoshka_dims``) and checks the config against the model first, so no other code branches on names.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sentence_transformers.base.sampler import BatchSamplers
from sentence_transformers.sentence_transformer import losses
from torch import nn

from configs.errors import UserError
from core.model import load_model_folder
from data.table import KINDS, kind_columns


@dataclass(frozen=True)
class LossSpec:
    make: Callable  # (model, loss config) -> torch.nn.Module: the library loss, unwrapped
    kinds: tuple[str, ...]  # data kinds whose columns it consumes, see data.sources.KINDS
    batch_sampler: BatchSamplers = BatchSamplers.BATCH_SAMPLER
    matryoshka: bool = True  # MatryoshkaLoss can wrap it (it re-reads sentence_embedding at each size)

    def build(self, model, config) -> nn.Module:
        """The configured loss for ``model``, wrapped in MatryoshkaLoss when ``config.matryoshka_dims`` is set.

        Args:
            model: the SentenceTransformer about to train.
            config: the run's loss section (``RunConfig.loss``).
        Raises:
            UserError: the config does not fit the model (see ``check_loss_fits_model``), before anything is built.
        """
        check_loss_fits_model(config, model)
        loss = self.make(model, config)
        if config.matryoshka_dims:
            loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=list(config.matryoshka_dims))
        return loss


def frozen_guide(model, config):
    """GIST's guide: a frozen, eval-mode copy of the base model (``loss.guide`` empty) or the model in that folder,
    loaded by the one loader (``core.model.load_model_folder``) with its checks, on the trained model's device.

    The copy is taken when the loss is built, i.e. before the first optimiser step, so it holds the base weights
    for the whole run (also on resume: the trainer loads checkpoint weights into ``model`` later, not the guide).
    Copying the loaded modules is exact (same max_seq_length, same tokenizer) and skips a second read and hash.
    """
    from sentence_transformers import SentenceTransformer

    if config.guide is None:
        guide = SentenceTransformer(modules=copy.deepcopy(list(model)), device=str(model.device))
    else:
        guide = load_model_folder(_guide_folder(config.guide), "loss.guide", device=str(model.device))
    guide.requires_grad_(False)  # the guide only scores candidates; the optimiser never sees it
    return guide.eval()  # no dropout: the guide's scores are the same at every step


def _guide_folder(guide: str) -> Path:
    path = Path(guide).expanduser()
    if not path.is_dir():
        raise UserError(f"loss.guide: folder {guide} does not exist. Give a local sentence-transformers model "
                        "folder, or leave loss.guide empty to guide with a frozen copy of the base model.")
    return path


def _gist(model, c) -> nn.Module:
    return losses.GISTEmbedLoss(model, frozen_guide(model, c), temperature=c.temperature,
                                margin_strategy="absolute", margin=c.margin)


def _cached_gist(model, c) -> nn.Module:
    return losses.CachedGISTEmbedLoss(model, frozen_guide(model, c), temperature=c.temperature,
                                      mini_batch_size=c.mini_batch_size, margin_strategy="absolute", margin=c.margin)


IN_BATCH = BatchSamplers.NO_DUPLICATES  # in-batch-negative losses: a duplicate text in a batch is a false negative

LOSSES: dict[str, LossSpec] = {
    # (sentence1, sentence2) → cosine, regressed onto score in 0..1
    "cosine": LossSpec(lambda m, c: losses.CosineSimilarityLoss(m), ("scored",)),
    # (sentence1, sentence2, score): every higher-scored pair should out-rank every lower-scored one
    "cosent": LossSpec(lambda m, c: losses.CoSENTLoss(m, scale=c.scale), ("scored",)),
    # CoSENT on angle differences, whose gradient does not vanish near cosine ±1
    "angle": LossSpec(lambda m, c: losses.AnglELoss(m, scale=c.scale), ("scored",)),
    # (anchor, positive[, negative_1..n]); the other rows' positives are the negatives, so no duplicates in a batch
    "mnrl": LossSpec(lambda m, c: losses.MultipleNegativesRankingLoss(m, scale=c.scale),
                     ("pairs", "triplets", "tuples"), IN_BATCH),
    # MNRL with GradCache: the whole batch is the candidate pool, memory follows mini_batch_size
    "cached_mnrl": LossSpec(
        lambda m, c: losses.CachedMultipleNegativesRankingLoss(m, scale=c.scale, mini_batch_size=c.mini_batch_size),
        ("pairs", "triplets", "tuples"), IN_BATCH),
    # MNRL that ignores in-batch negatives a frozen guide scores above the positive (near-duplicates).
    # GISTEmbedLoss reads 2 or 3 columns only; cached_gist takes any number of negatives.
    "gist": LossSpec(_gist, ("pairs", "triplets"), IN_BATCH),
    "cached_gist": LossSpec(_cached_gist, ("pairs", "triplets", "tuples"), IN_BATCH),
    # (sentence1, sentence2, label 0/1)
    "contrastive": LossSpec(lambda m, c: losses.ContrastiveLoss(m, margin=c.margin), ("labeled",)),
    "online_contrastive": LossSpec(lambda m, c: losses.OnlineContrastiveLoss(m, margin=c.margin), ("labeled",)),
    # (anchor, positive, negative)
    "triplet": LossSpec(lambda m, c: losses.TripletLoss(m, triplet_margin=c.margin), ("triplets",)),
    # (text, label): triplets are formed inside each batch, so each batch needs several texts of several classes
    "batch_all_triplet": LossSpec(lambda m, c: losses.BatchAllTripletLoss(m, margin=c.margin), ("classes",),
                                  BatchSamplers.GROUP_BY_LABEL),
}


def check_loss_fits_model(config, model) -> None:
    """Errors, before any training, for a loss section that cannot work with ``model``.

    Args:
        config: the run's loss section (``RunConfig.loss``).
        model: the loaded base SentenceTransformer.
    Raises:
        UserError: a Matryoshka size above the model's embedding size, a loss MatryoshkaLoss cannot wrap, or a
            ``loss.guide`` folder that does not exist.
    """
    if config.matryoshka_dims:
        if not LOSSES[config.name].matryoshka:
            raise UserError(f"loss.matryoshka_dims: loss '{config.name}' cannot be wrapped in MatryoshkaLoss. "
                            "Remove loss.matryoshka_dims or pick another loss.")
        size = model.get_embedding_dimension()
        too_big = [d for d in config.matryoshka_dims if size is not None and d > size]
        if too_big:
            raise UserError(f"loss.matryoshka_dims: {too_big} exceed the model's embedding size {size}. "
                            f"Use sizes up to {size}, largest first, e.g. [{size}, {size // 2}, {size // 4}].")
    if getattr(config, "guide", None) is not None:
        _guide_folder(config.guide)


def check_fit(loss_name: str, kind: str, origin: str) -> LossSpec:
    """The spec of ``loss_name``, or an error (before any training) when the data's columns do not fit it."""
    spec = LOSSES[loss_name]
    if kind not in spec.kinds:
        wanted = " or ".join("(" + ", ".join(KINDS[k]) + ("..." if k == "tuples" else "") + ")" for k in spec.kinds)
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
