"""Tell model parameters from optimizer state and bookkeeping in a checkpoint's keys.

Rules, first match wins. **bookkeeping**: ``_CHECKPOINTABLE_OBJECT_GRAPH``, and keys whose
object or last name component is a training-loop or checkpoint counter or flag: ``global_step``
(any case, TFLearn writes ``Global_Step``), ``save_counter``, TFLearn's ``Training_step`` and
``is_training``. An optimizer's own step counter (``optimizer/iter``, ``iterations``) is
**optimizer** state, since resuming training needs it like the moments. With an object graph
(TF2), the graph decides: a slot-variable node, or a node reachable from the root only through
an optimizer object (a node holding slot variables, or a root child named ``optimizer``/``opt``),
is **optimizer**; any node also reachable without passing through an optimizer is **model** —
this is how Keras 3's ``optimizer/_trainable_variables/N`` (the model's own weights, keyed under
the optimizer because that path is shorter) come out as model. Without a graph, by name:
keys containing ``/.OPTIMIZER_SLOT/``, keys under ``optimizer/`` except
``optimizer/_trainable_variables/``, TF1 slot suffixes (``…/Adam``, ``Adam_1``, ``Momentum``,
``Adagrad``, ``RMSProp``, ``RMSProp_1``, ``Ftrl``, ``Adadelta``, ``ExponentialMovingAverage``…),
Adam's ``beta1_power``/``beta2_power``, the moments of Google BERT's (and ALBERT's, ELECTRA's)
``AdamWeightDecayOptimizer`` (``…/adam_m``, ``…/adam_v``, and ``…/AdamWeightDecayOptimizer``,
``…_1`` in some ports) and Mesh TensorFlow's Adafactor slots (``…_slot_vc``, ``…_slot_vr``,
``…_slot_v``, ``…_slot_m``; T5's checkpoints) are **optimizer**; everything else is **model**.
"""

from __future__ import annotations

import re
import weakref
from collections import deque
from typing import Final, Literal

from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY, ObjectGraph

Role = Literal["model", "optimizer", "bookkeeping"]
MODEL: Final = "model"
OPTIMIZER: Final = "optimizer"
BOOKKEEPING: Final = "bookkeeping"

_ATTRIBUTE = "/.ATTRIBUTES/"
_BOOKKEEPING_NAMES = {"global_step", "save_counter", "training_step", "is_training"}
_OPTIMIZER_NAMES = {"optimizer", "opt", "_optimizer"}
#: TF1 slot suffixes and Adam's beta powers, in one pattern (listing runs it on every key)
_TF1_OPTIMIZER = re.compile(
    r"/(?:Adam|Momentum|Adagrad|AdagradDA|ProximalAdagrad|RMSProp|Ftrl|Adadelta|Nadam|Adamax|LazyAdam|"
    r"ExponentialMovingAverage|AdamWeightDecayOptimizer)(?:_\d+)?$|(?:^|/)beta[12]_power(?:_\d+)?$"
    r"|/adam_[mv]$|_slot_(?:vc|vr|v|m)$"
)
_graph_roles: weakref.WeakKeyDictionary[ObjectGraph, dict[int, Role]] = weakref.WeakKeyDictionary()


def classify(key: str, object_graph: ObjectGraph | None = None) -> Role:
    """Role of checkpoint ``key``: ``"model"``, ``"optimizer"`` or ``"bookkeeping"``."""
    if key == OBJECT_GRAPH_KEY:
        return BOOKKEEPING
    object_name = key.split(_ATTRIBUTE, 1)[0]
    if object_name.rsplit("/", 1)[-1].lower() in _BOOKKEEPING_NAMES:
        return BOOKKEEPING
    if object_graph is not None:
        node = object_graph.node_for_key(key)
        if node is not None:
            return _roles(object_graph)[node.id]
    if "/.OPTIMIZER_SLOT/" in key:
        return OPTIMIZER
    if object_name.startswith("optimizer/"):
        return MODEL if object_name.startswith("optimizer/_trainable_variables/") else OPTIMIZER
    # every alternative ends the name within its last component: search from the last "/" (twice as fast)
    if _TF1_OPTIMIZER.search(object_name, max(object_name.rfind("/"), 0)):
        return OPTIMIZER
    return MODEL


def _roles(graph: ObjectGraph) -> dict[int, Role]:
    """Role of every node: model if reachable without entering an optimizer, else optimizer."""
    cached = _graph_roles.get(graph)
    if cached is not None:
        return cached
    nodes = graph.nodes
    optimizers = {node.id for node in nodes if node.slot_variables}
    if nodes:
        optimizers |= {child for name, child in nodes[0].children if name.lower() in _OPTIMIZER_NAMES}
    outside: set[int] = set()
    if nodes and 0 not in optimizers:
        outside.add(0)
        queue = deque([0])
        while queue:
            for _, child in nodes[queue.popleft()].children:
                if child not in outside and child not in optimizers:
                    outside.add(child)
                    queue.append(child)
    roles: dict[int, Role] = {
        node.id: MODEL if node.id in outside and node.id not in graph.slot_nodes else OPTIMIZER for node in nodes
    }
    _graph_roles[graph] = roles
    return roles
