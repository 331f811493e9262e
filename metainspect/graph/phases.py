"""When each part of a model runs: on a served path, when the model is loaded, or off path.

* **serving** — a request runs it: what the served endpoints depend on (the given outputs,
  else the SignatureDefs, else the proposal: see :func:`metainspect.graph.endpoints.served_endpoints`),
  and in a TF2 SavedModel every saved ``tf.function`` a client of the loaded object can call
  (methods that are not signatures).
* **load time** — loading the model runs it, before any request: the ``__saved_model_init_op``
  signature, the collections TF1 loaders and Scaffolds run after a restore (main op, legacy init
  op, local init op, table initializers, readiness checks: ``LOAD_TIME_COLLECTIONS``), the
  SaverDef's restore op and whatever is hooked onto it, and a TF2 object graph's resource
  functions (``_create_resource``, ``_initialize``, ``_destroy_resource``) and the restore
  functions of its saveable objects.
* **off path** — nothing served or loaded runs it: training ops, the saver's save, a fresh
  start's ``init_op``, unused nodes.

Each is a set of :class:`Hook` s, a region with a label saying what runs it; a node in a
function runs when its function is reached, a node of a nested GraphDef when its host does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from metainspect.graph.collections import LEGACY_INIT_OP_KEY, LOAD_TIME_COLLECTIONS, MAIN_OP_KEY, TRAINING_COLLECTIONS
from metainspect.graph.endpoints import INIT_OP_SIGNATURE, served_endpoints, signature_tensors
from metainspect.graph.walk import Region, inference_path, region, upstream

if TYPE_CHECKING:
    from metainspect.graph.walk import GraphIndex, Site

Phase = Literal["serving", "load_time", "off_path"]
SERVING: Phase = "serving"
LOAD_TIME: Phase = "load_time"
OFF_PATH: Phase = "off_path"
#: the functions a TF2 resource hangs off its object, all run by the loader
RESOURCE_FUNCTIONS = ("_create_resource", "_initialize", "_destroy_resource")
#: the collection a Scaffold runs only for a fresh start (no checkpoint to restore)
FRESH_START = "init_op"
_FUNCTION_KINDS = ("function", "bare_concrete_function")
#: the collections whose op a TF1 SavedModel loader runs feeding the asset tensors their copies' paths
ASSET_FED_COLLECTIONS = frozenset({MAIN_OP_KEY, LEGACY_INIT_OP_KEY})


@dataclass(frozen=True)
class Hook:
    """One thing that runs part of the model: its phase, what runs it, and the part it runs."""

    phase: Phase
    label: str
    region: Region
    #: whether the loader feeds the graph's asset tensors the paths of its asset copies while this
    #: runs (a TF1 SavedModel's main op or legacy init op, the init-op signature); anything else
    #: reading an asset tensor gets the tensor's own value, the path on the machine that built it
    feeds_assets: bool = False


@dataclass(frozen=True)
class Phases:
    """The hooks of one model; :meth:`of` says when a site runs."""

    hooks: tuple[Hook, ...]

    def of(self, site: Site) -> tuple[Phase, Hook | None]:
        """The phase of ``site`` (load time before serving before off path) and the first hook running it."""
        for phase in (LOAD_TIME, SERVING, OFF_PATH):
            for hook in self.hooks:
                if hook.phase == phase and site in hook.region:
                    return phase, hook
        return OFF_PATH, None

    def of_function(self, name: str) -> tuple[Phase, Hook | None]:
        """When the library function ``name`` runs (see :meth:`of`)."""
        for phase in (LOAD_TIME, SERVING, OFF_PATH):
            for hook in self.hooks:
                if hook.phase == phase and name in hook.region.functions:
                    return phase, hook
        return OFF_PATH, None


def phases(index: GraphIndex, inputs: Mapping[str, str] | None = None,
           outputs: Mapping[str, str] | None = None) -> Phases:
    """The hooks of ``index``'s model given the endpoints a user named (computed once per endpoints)."""
    key = ("phases", tuple(sorted((inputs or {}).items())), tuple(sorted((outputs or {}).items())))
    if key not in index.memo:
        hooks = _serving_hooks(index, inputs, outputs) + _load_hooks(index) + _off_path_hooks(index)
        hooks += _object_graph_hooks(index)
        index.memo[key] = Phases(tuple(hook for hook in hooks if hook.region.nodes or hook.region.functions))
    return index.memo[key]  # type: ignore[no-any-return]


def describe(phase: Phase, hook: Hook | None, many: bool = False) -> str:
    """``it runs on a served path (signature 'serving_default')``, ``it runs at load time (collection …),
    before any request``, ``nothing served or loaded runs it`` (``they``/``them`` when ``many``)."""
    runs = "they run" if many else "it runs"
    where = f" ({hook.label})" if hook else ""
    if phase == SERVING:
        return f"{runs} on a served path{where}"
    if phase == LOAD_TIME:
        return f"{runs} at load time{where}, before any request"
    if hook:
        return f"{runs} only off the served path{where}"
    return f"nothing served or loaded runs {'them' if many else 'it'}"


# -- hooks ----------------------------------------------------------------------------------------

def _serving_hooks(index: GraphIndex, inputs: Mapping[str, str] | None,
                   outputs: Mapping[str, str] | None) -> list[Hook]:
    return [Hook(SERVING, label, inference_path(index, outs, fed))
            for label, outs, fed in served_endpoints(index.model, inputs, outputs)]


def _load_hooks(index: GraphIndex) -> list[Hook]:
    meta_graph = index.model.meta_graph
    hooks = []
    if INIT_OP_SIGNATURE in meta_graph.signature_def:
        signature = index.model.signatures()[INIT_OP_SIGNATURE]
        roots = [t for spec in signature.outputs.values() for t in signature_tensors(spec)]
        hooks.append(_graph_hook(index, LOAD_TIME, f"the loader's init op, signature {INIT_OP_SIGNATURE}", roots,
                                 feeds_assets=True))
    for name in LOAD_TIME_COLLECTIONS:
        hooks.append(_graph_hook(index, LOAD_TIME, f"collection {name}", _node_list(index, name),
                                 feeds_assets=name in ASSET_FED_COLLECTIONS))
    if meta_graph.HasField("saver_def") and meta_graph.saver_def.restore_op_name:
        restore = meta_graph.saver_def.restore_op_name
        hooks.append(_graph_hook(index, LOAD_TIME, f"the SaverDef's restore op {restore}", [restore]))
    return hooks


def _off_path_hooks(index: GraphIndex) -> list[Hook]:
    meta_graph = index.model.meta_graph
    hooks = [_graph_hook(index, OFF_PATH, f"collection {name}: training", _node_list(index, name))
             for name in TRAINING_COLLECTIONS]
    hooks.append(_graph_hook(index, OFF_PATH, f"collection {FRESH_START}: a fresh start without a checkpoint",
                             _node_list(index, FRESH_START)))
    if meta_graph.HasField("saver_def") and meta_graph.saver_def.save_tensor_name:
        hooks.append(_graph_hook(index, OFF_PATH, "the SaverDef's save op: saving", [meta_graph.saver_def.save_tensor_name]))
    return hooks


def _graph_hook(index: GraphIndex, phase: Phase, label: str, roots: Iterable[str], *,
                feeds_assets: bool = False) -> Hook:
    roots = list(roots)
    return Hook(phase, label, region(index, upstream(index, roots)) if roots else Region(frozenset(), frozenset()),
                feeds_assets)


def _node_list(index: GraphIndex, collection: str) -> list[str]:
    found = index.model.meta_graph.collection_def.get(collection)
    return list(found.node_list.value) if found is not None and found.WhichOneof("kind") == "node_list" else []


def _object_graph_hooks(index: GraphIndex) -> list[Hook]:
    """A TF2 object graph's functions: resource and restore functions at load time, the rest callable."""
    graph = index.model.meta_graph.object_graph_def
    nodes = graph.nodes
    if not nodes:
        return []
    roles: dict[int, tuple[Phase, str]] = {}
    paths = {0: ""}
    queue = deque([0])
    while queue:
        parent_id = queue.popleft()
        parent = nodes[parent_id]
        parent_kind = parent.WhichOneof("kind")
        for child in parent.children:
            child_id = child.node_id
            if not 0 <= child_id < len(nodes) or child_id in paths:
                continue
            path = f"{paths[parent_id]}/{child.local_name}" if paths[parent_id] else child.local_name
            paths[child_id] = path
            queue.append(child_id)
            if nodes[child_id].WhichOneof("kind") not in _FUNCTION_KINDS:
                continue
            if parent_kind in _FUNCTION_KINDS and parent_id in roles:
                roles[child_id] = roles[parent_id]
            elif parent_kind == "resource" and child.local_name in RESOURCE_FUNCTIONS:
                roles[child_id] = (LOAD_TIME, f"{child.local_name} of resource {paths[parent_id]!r}")
            else:
                roles[child_id] = (SERVING, f"saved function {path!r}, callable on the loaded model")
    for node_id, node in enumerate(nodes):
        for saveable in node.saveable_objects.values():
            restore = saveable.restore_function
            if 0 <= restore < len(nodes) and restore != 0:
                roles[restore] = (LOAD_TIME, f"restore function of object {paths.get(node_id, str(node_id))!r}")
    by_role: dict[tuple[Phase, str], set[str]] = {}
    for node_id, role in roles.items():
        by_role.setdefault(role, set()).update(_concrete_functions(nodes[node_id]))
    return [Hook(phase, label, Region(frozenset(), frozenset(index.functions_reached(functions))))
            for (phase, label), functions in by_role.items()]


def _concrete_functions(node: object) -> list[str]:
    kind = node.WhichOneof("kind")  # type: ignore[attr-defined]
    if kind == "function":
        return list(node.function.concrete_functions)  # type: ignore[attr-defined]
    if kind == "bare_concrete_function":
        return [node.bare_concrete_function.concrete_function_name]  # type: ignore[attr-defined]
    return []
