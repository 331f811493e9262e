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
on first use; the ops stock TensorFlow registers but has no CPU kernel for come from
``data/tf_kernel_registry.json`` (``tools/dump_kernel_registry.py``). Which input or attr of an
op names the file, URL or server it touches is :data:`LOCATION_INPUTS` / :data:`LOCATION_ATTRS`.
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
    "code-loading", "file-read", "file-write", "table-from-file", "network", "debug-url", "proto-descriptor",
    "output-like", "loss", "label-transform", "control-flow-plumbing", "frame-enter",
]

_SAVE = frozenset({"SaveV2", "Save", "SaveSlices"})
_RESTORE = frozenset({"RestoreV2", "Restore", "RestoreSlice"})
_TABLE_FROM_FILE = frozenset({"InitializeTableFromTextFile", "InitializeTableFromTextFileV2"})
_SUMMARY_WRITES = frozenset({
    "WriteSummary", "WriteScalarSummary", "WriteHistogramSummary", "WriteImageSummary", "WriteAudioSummary",
    "WriteGraphSummary", "WriteRawProtoSummary", "ImportEvent", "FlushSummaryWriter",
})
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
    "checkpoint-io": _SAVE | _RESTORE | {"MergeV2Checkpoints", "DTensorRestoreV2"},
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
    # ops reading files (or what a remote file system serves under a URL)
    "file-read": _TABLE_FROM_FILE | _RESTORE | {
        "ReadFile", "MatchingFiles", "ImmutableConst", "TextLineReader", "TextLineReaderV2", "TFRecordReader",
        "TFRecordReaderV2", "WholeFileReader", "WholeFileReaderV2", "FixedLengthRecordReader",
        "FixedLengthRecordReaderV2", "LMDBReader", "TextLineDataset", "TFRecordDataset", "TFRecordDatasetV2",
        "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "LMDBDataset", "ExperimentalLMDBDataset",
        "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "SqlDataset", "ExperimentalSqlDataset",
        "MatchingFilesDataset", "ExperimentalMatchingFilesDataset", "LoadDataset", "LoadAndRemapMatrix",
        "GenerateVocabRemapping", "SnapshotDatasetReader", "SnapshotChunkDataset", "ListSnapshotChunksDataset",
        "DTensorRestoreV2", "RecordInput",
    },
    # ops writing files: through a path input, or a summary writer another op created
    "file-write": _SAVE | _SUMMARY_WRITES | {
        "WriteFile", "DatasetToTFRecord", "ExperimentalDatasetToTFRecord", "SaveDataset", "SaveDatasetV2",
        "SnapshotDataset", "SnapshotDatasetV2", "CreateSummaryFileWriter", "CreateSummaryDbWriter",
        "MergeV2Checkpoints", "CacheDataset", "CacheDatasetV2", "DistributedSave", "CalibrationStatisticsSaver",
        "DumpTensor",
    },
    # lookup-table initializers reading a vocabulary file (a SavedModel's assets, or any path)
    "table-from-file": _TABLE_FROM_FILE,
    # ops talking to another process: RPC clients and servers, the tf.data service
    "network": frozenset({
        "RpcServer", "RpcClient", "RpcCall", "RpcServerStart", "RpcServerRegister", "RegisterDataset",
        "RegisterDatasetV2", "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3",
        "DataServiceDatasetV4", "DistributedSave", "RemoteCall",
    }),
    # debugger ops sending tensors to their ``debug_urls`` (``file://`` dumps, ``grpc://`` debuggers);
    # Copy/CopyHost name theirs in ``debug_ops_spec`` ("DebugIdentity;file:///dir;0")
    "debug-url": frozenset({
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary", "Copy",
        "CopyHost",
    }),
    # ops loading a protobuf descriptor set from ``descriptor_source`` unless it is ``local://`` or ``bytes://``
    "proto-descriptor": frozenset({"DecodeProtoV2", "EncodeProto"}),
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
TABLE_FROM_FILE_OPS = CATEGORIES["table-from-file"]
NETWORK_OPS = CATEGORIES["network"]
DEBUG_URL_OPS = CATEGORIES["debug-url"]
PROTO_DESCRIPTOR_OPS = CATEGORIES["proto-descriptor"]
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


# -- what an op touches ------------------------------------------------------------------------

#: the input naming the file, directory, glob, checkpoint prefix, URL or server address an op uses
LOCATION_INPUTS: Mapping[str, int] = MappingProxyType({
    **{op: 0 for op in (
        "ReadFile", "WriteFile", "MatchingFiles", "TextLineDataset", "TFRecordDataset", "TFRecordDatasetV2",
        "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2", "LMDBDataset", "ExperimentalLMDBDataset",
        "CSVDataset", "CSVDatasetV2", "ExperimentalCSVDataset", "MatchingFilesDataset",
        "ExperimentalMatchingFilesDataset", "LoadDataset", "LoadAndRemapMatrix", "GenerateVocabRemapping",
        "SnapshotDatasetReader", "SnapshotChunkDataset", "ListSnapshotChunksDataset", "DTensorRestoreV2",
        "RestoreV2", "Restore", "RestoreSlice", "SaveV2", "Save", "SaveSlices", "RpcServer", "RpcClient",
        "RemoteCall",
    )},
    **{op: 1 for op in (
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "CacheDataset", "CacheDatasetV2",
        "SnapshotDataset", "SnapshotDatasetV2", "SaveDataset", "SaveDatasetV2", "DatasetToTFRecord",
        "ExperimentalDatasetToTFRecord", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "SqlDataset",
        "ExperimentalSqlDataset", "DistributedSave", "RegisterDataset", "RegisterDatasetV2", "MergeV2Checkpoints",
    )},
    **{op: 2 for op in ("DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4")},
})
#: the input naming the protocol (``grpc``) of an address in :data:`LOCATION_INPUTS` (the tf.data service)
PROTOCOL_INPUTS: Mapping[str, int] = MappingProxyType({
    "RegisterDataset": 2, "RegisterDatasetV2": 2, "DataServiceDataset": 3, "DataServiceDatasetV2": 3,
    "DataServiceDatasetV3": 3, "DataServiceDatasetV4": 3,
})
#: datasets whose elements are their inputs (one element, or one slice of them per element)
ELEMENT_SOURCES = frozenset({"TensorDataset", "TensorSliceDataset"})
#: datasets whose elements hold the values of their input dataset's (input 0): reordered, repeated,
#: batched, filtered, prefetched…
ELEMENT_KEEPING = frozenset({
    "ShuffleDataset", "ShuffleDatasetV2", "ShuffleDatasetV3", "ShuffleAndRepeatDataset", "ShuffleAndRepeatDatasetV2",
    "RepeatDataset", "PrefetchDataset", "CacheDataset", "CacheDatasetV2", "TakeDataset", "SkipDataset",
    "ShardDataset", "OptionsDataset", "ModelDataset", "MaxIntraOpParallelismDataset", "PrivateThreadPoolDataset",
    "ExperimentalMaxIntraOpParallelismDataset", "ExperimentalPrivateThreadPoolDataset", "FilterDataset",
    "AssertCardinalityDataset", "BatchDataset", "BatchDatasetV2", "PaddedBatchDataset", "PaddedBatchDatasetV2",
    "UnbatchDataset", "ExperimentalUnbatchDataset", "RebatchDataset", "RebatchDatasetV2", "AutoShardDataset",
    "ExperimentalAutoShardDataset", "FinalizeDataset", "TakeWhileDataset", "AssertNextDataset",
})
#: the attr naming the file, stream or URLs an op uses
LOCATION_ATTRS: Mapping[str, str] = MappingProxyType({
    "ImmutableConst": "memory_region_name", "PrintV2": "output_stream", "DecodeProtoV2": "descriptor_source",
    "EncodeProto": "descriptor_source", "CalibrationStatisticsSaver": "output_file_path",
    "RecordInput": "file_pattern", "DumpTensor": "log_dir_path",
    **{op: "debug_urls" for op in ("DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount",
                                   "DebugNumericSummary")},
    "Copy": "debug_ops_spec", "CopyHost": "debug_ops_spec",
})
#: ops reaching their file or server through a resource handle (input 0) another op opened:
#: the handle's producer (RpcClient for RpcCall) or another consumer of it (CreateSummaryFileWriter)
#: names the location
THROUGH_HANDLE = _SUMMARY_WRITES | {"RpcCall", "RpcServerStart", "RpcServerRegister"}
#: values of the locations above that touch no file: PrintV2's console streams, the protobuf
#: descriptor pool linked into the binary (``local://``) or embedded bytes (``bytes://``), an
#: in-memory ``CacheDataset`` (empty file name)
CONSOLE_STREAMS = frozenset({"stderr", "stdout", "log(info)", "log(warning)", "log(error)"})
NO_FILE_PREFIXES = ("local://", "bytes://")
#: URL schemes of TensorFlow's file systems that stay on the machine (``ram://`` is memory)
LOCAL_SCHEMES = frozenset({"", "file", "ram"})


def url_scheme(location: str) -> str:
    """``gs`` for ``gs://bucket/x``, ``file`` for ``file:///tmp``, ``""`` for a plain path."""
    scheme, sep, _ = location.partition("://")
    return scheme.lower() if sep and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum() else ""


def is_remote(location: str) -> bool:
    """True for URLs TensorFlow's file systems fetch over the network (``gs://``, ``s3://``, ``hdfs://``,
    ``http://``, a debugger's ``grpc://``…): every scheme but ``file://``, ``ram://`` and plain paths."""
    return url_scheme(location) not in LOCAL_SCHEMES


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


@dataclass(frozen=True)
class KernelRegistry:
    """Which registered ops stock TensorFlow has no CPU kernel for (``data/tf_kernel_registry.json``).

    ``no_cpu_kernel`` maps each such op to the device types it has kernels for (empty: none in
    the stock build, e.g. ``BoostedTreesBucketize``). Ops a graph optimization replaces before
    execution (``AccumulateNV2``) are left out: graphs using them run on CPU.
    """

    tf_version: str
    no_cpu_kernel: Mapping[str, tuple[str, ...]]


@lru_cache(maxsize=1)
def kernel_registry() -> KernelRegistry:
    """The kernel registry ``tools/dump_kernel_registry.py`` wrote with TensorFlow 2.21."""
    import json
    from importlib import resources

    data = json.loads(resources.files("metainspect").joinpath("data/tf_kernel_registry.json").read_text())
    rewritten = set(data["rewritten_in_graphs"])
    return KernelRegistry(data["tf_version"], MappingProxyType({
        op: tuple(devices) for op, devices in data["no_cpu_kernel"].items() if op not in rewritten}))
