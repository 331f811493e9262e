"""What a node is for: model computation, or training, saving, summary and init machinery.

A thin user of :mod:`metainspect.graph.ops`: the op categories come from its table, this module
adds what only a node's name tells (the name scopes TensorFlow puts machinery in).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

from metainspect.graph.ops import (
    AUXILIARY_OPS,
    SUMMARY_OPS,
    TRAINING_OP_PREFIXES,
    VARIABLE_UPDATE_OPS,
    is_input_pipeline,
    is_training_op,
)

if TYPE_CHECKING:
    from metainspect.graph.model import Node

#: why a node has no place on an inference path
ServingRole = Literal["training", "input-pipeline", "variable-update", "summary"]

#: name scopes at the start of a name that hold training, saving or initialisation machinery
AUXILIARY_SCOPES = ("save/", "gradients/", "train/", "init", "report_uninitialized", "Adam", "GradientDescent")
#: scopes of optimizers' slots and updates (TF1 optimizers' default names)
_OPTIMIZER_SCOPES = ("Adam", "GradientDescent", "Momentum", "RMSProp", "Adagrad", "AdagradDA", "Adadelta",
                     "Ftrl", "ProximalAdagrad", "ProximalGradientDescent")
#: nodes of a gradient computation (``gradients/``, ``gradients_1/``, ``model/gradients/``…)
GRADIENT_SCOPE = re.compile(r"(^|/)gradients(_\d+)?/")
#: the auxiliary scopes at the start of a name (and any saver's ``save_N/``); gradient,
#: initializer and optimizer scopes anywhere
_AUXILIARY_SCOPE = re.compile(
    "^(?:" + "|".join(re.escape(s) for s in AUXILIARY_SCOPES) + r"|save(?:_\d+)?/)"
    r"|(?:^|/)(?:gradients|Initializer|" + "|".join(_OPTIMIZER_SCOPES) + r")(?:_\d+)?/")
#: a cheap pre-test for _AUXILIARY_SCOPE (a literal alternation is searched fast)
_SCOPE_HINT = re.compile("|".join(AUXILIARY_SCOPES + _OPTIMIZER_SCOPES) + "|save|gradients|Initializer")


def in_gradient_scope(name: str) -> bool:
    """True for nodes inside a gradient computation's scope."""
    return "gradients" in name and GRADIENT_SCOPE.search(name) is not None


def in_auxiliary_scope(name: str) -> bool:
    """True for names in the scopes of savers, gradients, initializers, optimizers and init ops."""
    return _SCOPE_HINT.search(name) is not None and _AUXILIARY_SCOPE.search(name) is not None


def is_auxiliary(node: Node, saver_scope: str | None = None) -> bool:
    """True for nodes that are not model computation: saver, optimizer, summary, init ops."""
    op = node.op
    return (op in AUXILIARY_OPS or op.startswith(TRAINING_OP_PREFIXES)
            or bool(saver_scope and node.name.startswith(saver_scope))
            or in_auxiliary_scope(node.name))


def serving_role(node: Node) -> ServingRole | None:
    """Why a node has no place on an inference path, or None when it may be there."""
    if in_gradient_scope(node.name):
        return "training"
    return _op_role(node.op)


@lru_cache(maxsize=4096)
def _op_role(op: str) -> ServingRole | None:
    if is_training_op(op):
        return "training"
    if is_input_pipeline(op):
        return "input-pipeline"
    if op in VARIABLE_UPDATE_OPS:
        return "variable-update"
    if op in SUMMARY_OPS:
        return "summary"
    return None
