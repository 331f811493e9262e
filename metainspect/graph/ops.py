"""One table of op categories, and the ops stock TensorFlow registers.

Every rule that asks "is this op a variable, a read, a summary, a saver op…" reads the answer
from :data:`CATEGORIES`, a single table of category -> op names; the constants below
(``VARIABLE_OPS``, ``SUMMARY_OPS``…) are views of it. An op may be in several categories
(``CreateSummaryFileWriter`` is a summary op and writes a file). Two families are rules, not
lists: optimizer updates (``Apply*``, ``ResourceApply*``…: :func:`is_training_op`) and input
pipelines (queues, readers, datasets, iterators: :func:`is_input_pipeline`).

Every op in the table is registered by stock TensorFlow 2.21 except those in
:data:`NOT_STOCK`, which say why they are listed anyway.

What a *node* is for (training, saver, summary machinery, judged by op and name scope) is
:mod:`metainspect.graph.roles`, a thin user of this table: roles look at names and scopes,
this module at op types only.

The stock registry and the output signature of every stock op come from one data file,
``data/tf_ops.json`` (written by ``tools/dump_tf_ops.py`` with TensorFlow 2.21), loaded once
on first use.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal

Category = Literal[
    "variable", "ref-variable", "resource-variable", "placeholder", "const", "identity", "variable-read",
    "assign", "variable-update", "init-check", "save", "restore", "v1-restore", "checkpoint-io",
    "saver-filename", "summary", "debug", "shape", "housekeeping", "pipeline-output", "python",
    "code-loading", "file-read", "file-write", "output-like", "loss", "label-transform",
    "control-flow-plumbing", "frame-enter",
]

_SAVE = frozenset({"SaveV2", "Save", "SaveSlices"})
_RESTORE = frozenset({"RestoreV2", "Restore", "RestoreSlice"})
_REF_VARIABLE = frozenset({"VariableV2", "Variable", "AutoReloadVariable"})
_IDENTITY = frozenset({"Identity", "Snapshot"})

#: category -> op names (the one table; see the module docstring)
CATEGORIES: Mapping[Category, frozenset[str]] = MappingProxyType({
    # variables: ref variables (TF1) and resource variable handles
    "variable": _REF_VARIABLE | {"VarHandleOp"},
    "ref-variable": _REF_VARIABLE,
    "resource-variable": frozenset({"VarHandleOp"}),
    "placeholder": frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"}),
    # ops holding their value in a ``value`` attr
    "const": frozenset({"Const", "HostConst"}),
    # ops forwarding their single input unchanged: a constant or a variable is seen through them
    "identity": _IDENTITY,
    # ops reading a variable's value from their first input (a ref, a handle, or another read)
    "variable-read": _IDENTITY | {"ReadVariableOp", "_ReadVariablesOp"},
    # ops writing a whole value into the variable of their first input (what restores use)
    "assign": frozenset({"Assign", "AssignVariableOp"}),
    # ops changing a variable's value in place
    "variable-update": frozenset({
        "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
        "ScatterUpdate", "ScatterAdd", "ScatterSub", "ScatterMul", "ScatterDiv", "ScatterMin", "ScatterMax",
        "ScatterNdUpdate", "ScatterNdAdd", "ScatterNdSub", "ScatterNdMin", "ScatterNdMax",
        "ResourceScatterUpdate", "ResourceScatterAdd", "ResourceScatterSub", "ResourceScatterMul",
        "ResourceScatterDiv", "ResourceScatterMin", "ResourceScatterMax", "ResourceScatterNdUpdate",
        "ResourceScatterNdAdd", "ResourceScatterNdSub", "ResourceScatterNdMin", "ResourceScatterNdMax",
        "CountUpTo", "ResourceCountUpTo",
    }),
    "init-check": frozenset({"IsVariableInitialized", "VarIsInitializedOp"}),
    # a saver's ops: save ops take keys from input 1, restore ops read them into their outputs
    "save": _SAVE,
    "restore": _RESTORE,
    # restore ops that read V1 checkpoints only (RestoreV2 reads both formats)
    "v1-restore": frozenset({"Restore", "RestoreSlice"}),
    "checkpoint-io": _SAVE | _RESTORE | {"MergeV2Checkpoints"},
    # ops a sharded saver builds its file names with
    "saver-filename": frozenset({"ShardedFilename", "ShardedFilespec", "StringJoin"}),
    "summary": frozenset({
        "ScalarSummary", "HistogramSummary", "ImageSummary", "AudioSummary", "AudioSummaryV2", "TensorSummary",
        "TensorSummaryV2", "MergeSummary", "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary",
        "WriteImageSummary", "WriteAudioSummary", "WriteGraphSummary", "WriteRawProtoSummary", "ImportEvent",
        "CreateSummaryFileWriter", "CreateSummaryDbWriter", "SummaryWriter", "FlushSummaryWriter",
        "CloseSummaryWriter",
    }),
    "debug": frozenset({"Assert", "Print", "PrintV2"}),
    # ops describing a tensor rather than computing with it
    "shape": frozenset({"Shape", "ShapeN", "Size", "Rank"}),
    "housekeeping": frozenset({"NoOp", "DestroyResourceOp"}),
    # ops handing an input pipeline's next element to the model
    "pipeline-output": frozenset({
        "IteratorGetNext", "IteratorGetNextSync", "QueueDequeue", "QueueDequeueV2", "QueueDequeueMany",
        "QueueDequeueManyV2", "QueueDequeueUpTo", "QueueDequeueUpToV2", "ReaderRead", "ReaderReadV2",
        "ReaderReadUpTo", "ReaderReadUpToV2",
    }),
    # ops calling back into the Python process that built the graph
    "python": frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"}),
    "code-loading": frozenset({"LoadLibrary"}),
    "file-read": frozenset({
        "ReadFile", "MatchingFiles", "ImmutableConst", "InitializeTableFromTextFile",
        "InitializeTableFromTextFileV2", "TextLineReader", "TextLineReaderV2", "TFRecordReader",
        "TFRecordReaderV2", "WholeFileReader", "WholeFileReaderV2", "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2", "LMDBReader", "TextLineDataset", "TFRecordDataset", "TFRecordDatasetV2",
        "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "LMDBDataset", "ExperimentalLMDBDataset",
        "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "SqlDataset", "ExperimentalSqlDataset",
        "MatchingFilesDataset", "ExperimentalMatchingFilesDataset", "LoadDataset", "LoadAndRemapMatrix",
        "GenerateVocabRemapping",
    }),
    "file-write": frozenset({
        "WriteFile", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2",
        "SnapshotDataset", "SnapshotDatasetV2", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
    }),
    # ops whose result usually is a model output
    "output-like": frozenset({"Softmax", "Sigmoid", "ArgMax", "TopKV2"}),
    "loss": frozenset({"SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits", "L2Loss"}),
    # ops a label passes through on its way into a cross-entropy op (first input)
    "label-transform": frozenset({"Identity", "StopGradient", "Reshape", "Cast", "ExpandDims", "Squeeze", "OneHot"}),
    # control-flow ops that route values and never are a result (Merge and Exit can be)
    "control-flow-plumbing": frozenset({
        "Switch", "RefSwitch", "Enter", "RefEnter", "NextIteration", "RefNextIteration", "LoopCond",
        "ControlTrigger",
    }),
    # ops entering a while loop's frame (they carry the frame's name in ``frame_name``)
    "frame-enter": frozenset({"Enter", "RefEnter"}),
})

#: ops of the table that stock TensorFlow 2.21 does not register, and why they are listed
NOT_STOCK: Mapping[str, str] = MappingProxyType({
    "AutoReloadVariable": "a TF1 contrib variable op; graphs written with contrib still hold it",
    "LoadLibrary": "not an op of any TF release: a graph naming it ships its own kernel library",
})

VARIABLE_OPS = CATEGORIES["variable"]
REF_VARIABLE_OPS = CATEGORIES["ref-variable"]
RESOURCE_VARIABLE_OPS = CATEGORIES["resource-variable"]
PLACEHOLDER_OPS = CATEGORIES["placeholder"]
CONST_OPS = CATEGORIES["const"]
IDENTITY_OPS = CATEGORIES["identity"]
VARIABLE_READ_OPS = CATEGORIES["variable-read"]
ASSIGN_OPS = CATEGORIES["assign"]
VARIABLE_UPDATE_OPS = CATEGORIES["variable-update"]
INIT_CHECK_OPS = CATEGORIES["init-check"]
SAVE_OPS = CATEGORIES["save"]
RESTORE_OPS = CATEGORIES["restore"]
V1_RESTORE_OPS = CATEGORIES["v1-restore"]
CHECKPOINT_OPS = CATEGORIES["checkpoint-io"]
SUMMARY_OPS = CATEGORIES["summary"]
PIPELINE_OUTPUT_OPS = CATEGORIES["pipeline-output"]
PYTHON_OPS = CATEGORIES["python"]
CODE_LOADING_OPS = CATEGORIES["code-loading"]
FILE_READ_OPS = CATEGORIES["file-read"]
FILE_WRITE_OPS = CATEGORIES["file-write"]
OUTPUT_LIKE_OPS = CATEGORIES["output-like"]
LOSS_OPS = CATEGORIES["loss"]
LABEL_TRANSFORM_OPS = CATEGORIES["label-transform"]
PLUMBING_OPS = CATEGORIES["control-flow-plumbing"]
FRAME_ENTER_OPS = CATEGORIES["frame-enter"]

#: ops that never are a model output: bookkeeping, inputs, state, saver, summaries, checks, shapes
AUXILIARY_OPS = frozenset().union(*(CATEGORIES[c] for c in (
    "housekeeping", "const", "placeholder", "variable", "variable-update", "init-check", "checkpoint-io",
    "saver-filename", "summary", "debug", "shape",
)))

#: op-name prefixes of optimizer updates (ApplyAdam, ResourceApplyAdam, ResourceSparseApply…)
TRAINING_OP_PREFIXES = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")
#: queues, readers, ``tf.data`` datasets and iterators
_INPUT_PIPELINE = re.compile(r"Queue|Reader|Iterator|Dataset(V\d+)?$|^RecordInput$")


def is_training_op(op: str) -> bool:
    """Optimizer update ops."""
    return op.startswith(TRAINING_OP_PREFIXES)


def is_input_pipeline(op: str) -> bool:
    """Queues, readers, ``tf.data`` datasets and iterators: training input, not request input."""
    return bool(_INPUT_PIPELINE.search(op))


# -- stock TensorFlow ---------------------------------------------------------------------------

@dataclass(frozen=True)
class OpRegistry:
    """Every op name registered in one TensorFlow release."""

    tf_version: str
    ops: frozenset[str]

    def __contains__(self, op: object) -> bool:
        return op in self.ops


@lru_cache(maxsize=1)
def stock_ops() -> dict[str, Any]:
    """``data/tf_ops.json``: ``{"tf_version", "source", "count", "ops": {name: output signature}}``."""
    import json
    from importlib import resources

    text = resources.files("metainspect").joinpath("data/tf_ops.json").read_text()
    return json.loads(text)  # type: ignore[no-any-return]


@lru_cache(maxsize=1)
def stock_registry() -> OpRegistry:
    """The registry of the TensorFlow release ``tools/dump_tf_ops.py`` was run with."""
    data = stock_ops()
    return OpRegistry(data["tf_version"], frozenset(data["ops"]))
