"""What a node is for: model computation, or training, saving, summary and init machinery."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metainspect.graph.model import Node

#: ops that never are a model output
AUXILIARY_OPS = frozenset({
    "NoOp", "Const", "Placeholder", "PlaceholderWithDefault", "VariableV2", "Variable", "VarHandleOp",
    "Assign", "AssignAdd", "AssignSub", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    "SaveV2", "Save", "SaveSlices", "RestoreV2", "Restore", "RestoreSlice", "MergeV2Checkpoints",
    "ShardedFilename", "ShardedFilespec", "StringJoin", "VarIsInitializedOp", "IsVariableInitialized",
    "ScalarSummary", "HistogramSummary", "ImageSummary", "AudioSummary", "TensorSummary",
    "TensorSummaryV2", "MergeSummary", "WriteScalarSummary", "WriteSummary", "FlushSummaryWriter",
    "CreateSummaryFileWriter", "SummaryWriter", "Assert", "Print", "PrintV2", "DestroyResourceOp",
    "Shape", "ShapeN", "Size", "Rank",
})
#: op-name prefixes of optimizer updates (ApplyAdam, ResourceApplyAdam, ResourceSparseApply…)
TRAINING_OP_PREFIXES = ("Apply", "ResourceApply", "SparseApply", "ResourceSparseApply")
#: name scopes that hold training, saving or initialisation machinery
AUXILIARY_SCOPES = ("save/", "gradients/", "train/", "init", "report_uninitialized", "Adam", "GradientDescent")


def is_training_op(op: str) -> bool:
    """Optimizer update ops."""
    return op.startswith(TRAINING_OP_PREFIXES)


def is_auxiliary(node: Node, saver_scope: str | None = None) -> bool:
    """True for nodes that are not model computation: saver, optimizer, summary, init ops."""
    if node.op in AUXILIARY_OPS or is_training_op(node.op):
        return True
    if saver_scope and node.name.startswith(saver_scope):
        return True
    if node.name.startswith(AUXILIARY_SCOPES):
        return True
    return any(part == "gradients" or part.startswith("gradients_") for part in node.name.split("/")[:-1])
