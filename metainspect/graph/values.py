"""Where a tensor's value comes from, across function calls.

:func:`origins` follows a tensor back through ops that keep its values (Identity, Snapshot, IdentityN, Reshape…),
variable reads (to the values assigned to the variable, and the value its checkpoint holds when
the caller supplied it as :data:`StoredStrings`), and function arguments (to every call
site, and to a TF2 object graph's bound inputs) until it reaches constants, the model's assets
(tensors a SavedModel loader sets to the path of one of its asset files), or something only
known at run time (a fed placeholder, a computed value). :func:`extends_path` asks whether a path
is a given filename tensor or a shard name a saver makes from it.

Calls map arguments to call inputs by the convention of the calling op: ``PartitionedCall``-like
ops and functions called as ops pass input *i* as argument *i*; ``If`` and ``Case`` skip their
first input (the condition or branch index); ``While`` passes its loop variables; any op with a
``Targuments`` attr (``tf.data`` functions) passes its last inputs as the function's last
arguments, and the elements of a dataset made from graph tensors (``from_tensor_slices``) as its
first ones. Both walks are bounded (:data:`MAX_STEPS`) and never raise on a malformed graph.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from itertools import islice, product
from typing import TYPE_CHECKING, NamedTuple

from metainspect.graph.names import function_input, op_name, output_index, tensor_name
from metainspect.graph.ops import (
    ASSIGN_OPS,
    CONST_OPS,
    ELEMENT_KEEPING,
    ELEMENT_SOURCES,
    IDENTITY_OPS,
    PLACEHOLDER_OPS,
    VARIABLE_READ_OPS,
)
from metainspect.graph.walk import Scope, Site, variable_behind

if TYPE_CHECKING:
    from metainspect.graph.model import Node
    from metainspect.graph.walk import GraphIndex

#: tensors visited by one walk at most (real graphs need a handful)
MAX_STEPS = 4096
#: ops calling a function with input i as argument i (besides functions called as ops)
_DIRECT_CALLS = frozenset({"PartitionedCall", "StatefulPartitionedCall", "TPUPartitionedCall", "While",
                           "StatelessWhile"})
#: ops whose first input selects what runs; argument i is input i + 1
_BRANCHING_CALLS = frozenset({"If", "StatelessIf", "Case", "StatelessCase"})
#: ops whose output holds the values of an input (of input 0; IdentityN: of the input its output is)
_PASS_THROUGH = IDENTITY_OPS | {"IdentityN", "Reshape", "ExpandDims", "Squeeze", "StopGradient", "Gather", "GatherV2",
                                "GatherNd", "StridedSlice", "Slice", "Tile", "Transpose", "Reverse", "ReverseV2",
                                "BroadcastTo", "Unpack", "Pack", "ConcatV2"}
#: ops whose output is one of two inputs' values (inputs 1 and 2: the condition is input 0)
_CHOOSING = frozenset({"Select", "SelectV2"})
#: string joins followed inside one another, and the values one join makes, at most
_MAX_JOINS = 8
#: dataset transformations followed back to the dataset a function's elements come from, at most
_MAX_DATASET_CHAIN = 64
_MAX_JOINED = 16
#: ops a saver makes its shard names with, keeping input 0 as the start of the path
_PATH_EXTENDING = IDENTITY_OPS | {"StringJoin", "ShardedFilename", "ShardedFilespec"}


class Origins(NamedTuple):
    """What a tensor can be: string constants, asset files, and whether anything else is possible."""

    constants: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()
    #: fed, computed, read from a variable nothing assigns, or beyond what the walk could follow
    runtime: bool = False
    #: what the graph's asset tensors among ``assets`` hold when the loader does not feed them (their
    #: constants: paths on the machine that built the model), as when a served request reads them
    unfed: tuple[str, ...] = ()

    @property
    def only_assets(self) -> bool:
        """Nothing but the model's own asset files (or nothing at all: the value is never set)."""
        return not self.constants and not self.runtime


#: a variable whose saved value a checkpoint may hold: ``("object", id)`` of a TF2 object graph or
#: ``("node", name)`` of a graph variable
VariableRef = tuple[str, "int | str"]
#: the string values a checkpoint holds for a variable (None: it holds none, or they were not read);
#: set as ``index.memo["stored_strings"]`` by whoever has the checkpoint (``check``)
StoredStrings = Callable[[VariableRef], "tuple[str, ...] | None"]


class Caller(NamedTuple):
    """A node calling a function, and the scope that node sits in."""

    scope: Scope
    node: Node


def origins(index: GraphIndex, site: Site, ref: str) -> Origins:
    """Where the tensor ``ref``, an input of ``site``'s node, comes from (see the module docstring)."""
    return _origins(index, index.scope(site), ref, 0)


def _origins(index: GraphIndex, scope: Scope, ref: str, depth: int) -> Origins:
    """:func:`origins` of ``ref`` in ``scope``, ``depth`` string joins deep."""
    from metainspect.graph.collections import asset_tensors

    if "assets" not in index.memo:
        index.memo["assets"] = asset_tensors(index.model.meta_graph)
    assets: dict[str, str] = index.memo["assets"]
    constants: dict[str, None] = {}
    files: dict[str, None] = {}
    unfed: dict[str, None] = {}
    runtime = unbound = False
    pending = [(scope, ref)]
    seen: set[tuple[int, str]] = set()
    while pending:
        if len(seen) >= MAX_STEPS:
            return Origins(tuple(constants), tuple(files), True, tuple(unfed))
        scope, ref = pending.pop()
        if (id(scope), ref) in seen:
            continue
        seen.add((id(scope), ref))
        at_graph = scope.function is None and scope.nesting is None
        source = _source(scope, ref)
        if isinstance(source, int):
            found = _argument(index, scope, source)
            bound = _bound_input(index, scope, source)
            if found is None:
                runtime = True
            elif not found and bound is None:
                unbound = True  # nothing calls the function: it never gets this argument
            pending += found or []
            pending += _function_assignments(index, scope, source)
            if bound is not None:
                constants.update(dict.fromkeys(bound.constants))
                for asset in bound.assets:
                    _add_asset(asset, files, constants)
                runtime = runtime or bound.runtime
            continue
        node = source
        if node is None:
            runtime = True
        elif at_graph and tensor_name(_graph_ref(ref)) in assets:
            declared = assets[tensor_name(_graph_ref(ref))]
            if declared:
                _add_asset(declared, files, constants)
            else:
                files[_first_string(node)] = None
            if node.op in CONST_OPS:
                unfed.update(dict.fromkeys(_strings(node)))
        elif node.op in CONST_OPS:
            constants.update(dict.fromkeys(_strings(node)))
        elif node.op in _PASS_THROUGH and node.inputs:
            if node.op in ("Pack", "ConcatV2"):  # every input's values (ConcatV2's last input is the axis)
                pending += [(scope, i) for i in node.inputs[: -1 if node.op == "ConcatV2" else None]]
                continue
            position = _output_position(scope, ref) if node.op == "IdentityN" else 0
            if position < len(node.inputs):
                pending.append((scope, node.inputs[position]))
            else:
                runtime = True
        elif node.op in _CHOOSING and len(node.inputs) == 3:
            pending += [(scope, node.inputs[1]), (scope, node.inputs[2])]
        elif node.op == "PlaceholderWithDefault" and node.inputs:
            pending.append((scope, node.inputs[0]))  # its default, unless a served request feeds it
            served_inputs: Callable[[], frozenset[str]] | None = index.memo.get("served_inputs")
            runtime = runtime or served_inputs is None or node.name in served_inputs()
        elif node.op in PLACEHOLDER_OPS:
            runtime = True
        elif not at_graph and node.op in VARIABLE_READ_OPS and node.inputs:
            pending.append((scope, node.inputs[0]))  # a read of a handle the function gets: its variable
        elif node.op == "StringJoin" and depth < _MAX_JOINS:
            joined = _joined(index, scope, node, depth)
            constants.update(dict.fromkeys(joined.constants))
            runtime = runtime or joined.runtime
        elif at_graph and (variable := variable_behind(scope.nodes, ref)) is not None:
            assigned = list(_assigned_values(index, variable))
            stored = _stored(index, ("node", variable.name))
            constants.update(dict.fromkeys(stored or ()))
            runtime = runtime or not (assigned or stored)
            pending += [(scope, value) for value in assigned]
        else:
            runtime = True
    # a walk that ends nowhere but in a cycle found no value: anything is possible
    return Origins(tuple(constants), tuple(files), runtime or not (constants or files or unbound), tuple(unfed))


def extends_path(index: GraphIndex, site: Site, ref: str, targets: Collection[str]) -> bool:
    """True when the path ``ref`` (an input of ``site``'s node) is one of the graph nodes ``targets``
    or a name made from it as TensorFlow's savers make shard names: through Identity, the first part
    of a ``StringJoin`` (other parts constant suffixes without ``..``), ``ShardedFilename`` and
    ``ShardedFilespec``, and function arguments to their call sites. Any other op (a regex replace,
    a join putting something before it) makes another path."""
    pending = [(index.scope(site), ref)]
    seen: set[tuple[int, str]] = set()
    reached = False
    while pending and len(seen) < MAX_STEPS:
        scope, ref = pending.pop()
        if (id(scope), ref) in seen:
            continue
        seen.add((id(scope), ref))
        source = _source(scope, ref)
        if isinstance(source, int):
            found = _argument(index, scope, source)
            if not found:
                return False
            pending += found
            continue
        if source is None or (not source.inputs and source.name not in targets):
            return False
        if scope.function is None and scope.nesting is None and source.name in targets:
            reached = True
            continue
        if source.op not in _PATH_EXTENDING or any(".." in text for text in _suffixes(scope, source)):
            return False
        pending.append((scope, source.inputs[0]))
    return not pending and reached


def _suffixes(scope: Scope, join: Node) -> list[str]:
    """The constant strings a ``StringJoin`` puts after its first part (its separator too)."""
    if join.op != "StringJoin":
        return []
    texts = [value.s.decode("utf-8", "replace") for key, value in join.proto.attr.items() if key == "separator"]
    for ref in join.inputs[1:]:
        node = _source(scope, ref)
        if node is not None and not isinstance(node, int) and node.op in CONST_OPS:
            texts += _strings(node)
    return texts


def callers(index: GraphIndex, function: str) -> list[Caller]:
    """Every node of the model's graph and library calling ``function`` (computed once per model)."""
    table = index.memo.get("callers")
    if table is None:
        table = {}
        scopes = [(index.graph_scope(), index.model.nodes())]
        scopes += [(index.function_scope(name), fn.nodes) for name, fn in index.functions.items()]
        for scope, nodes in scopes:
            for node in nodes:
                for callee in index.callees(node):
                    table.setdefault(callee, []).append(Caller(scope, node))
        index.memo["callers"] = table
    return table.get(function, [])  # type: ignore[no-any-return]


def call_input(node: Node, callee: str, arg: int, arg_count: int) -> str | None:
    """The input of ``node`` bound to argument ``arg`` of the function ``callee`` it calls, which takes
    ``arg_count`` arguments (None: the calling op's convention does not say)."""
    if node.op == callee or node.op in _DIRECT_CALLS:
        position = arg
    elif node.op in _BRANCHING_CALLS:
        position = arg + 1
    elif "Targuments" in node.proto.attr:
        captured = len(node.proto.attr["Targuments"].list.type)
        first = arg_count - captured
        position = len(node.inputs) - captured + (arg - first) if arg >= first else -1
    else:
        position = -1
    return node.inputs[position] if 0 <= position < len(node.inputs) else None


# -- one step ------------------------------------------------------------------------------------

def _source(scope: Scope, ref: str) -> Node | int | None:
    """The node producing ``ref`` in ``scope``, the index of the function argument it names, or None."""
    if scope.function is None:
        return scope.nodes.get(op_name(ref))
    parsed = function_input(ref)
    if not parsed.output and parsed.node in scope.args and not parsed.control:
        return scope.args.index(parsed.node)
    return scope.nodes.get(parsed.node)


def _joined(index: GraphIndex, scope: Scope, join: Node, depth: int) -> Origins:
    """What a ``StringJoin`` can make: its parts' values joined (a part known only at run time is ``*``,
    so ``gs://bucket/*`` still names the bucket), :data:`_MAX_JOINED` combinations at most."""
    separator = join.proto.attr["separator"].s.decode("utf-8", "replace") if "separator" in join.proto.attr else ""
    from metainspect.graph.ops import is_remote

    parts = [_origins(index, scope, ref, depth + 1) for ref in join.inputs[:_MAX_JOINED]]
    # remote URLs first: what a path can be that leaves the machine is kept when combinations are cut
    choices = [sorted([*part.constants, *(f"assets/{a}" for a in part.assets)], key=lambda v: not is_remote(v))
               + (["*"] if part.runtime else []) for part in parts]
    joined = [separator.join(combination) for combination in islice(product(*choices), _MAX_JOINED)]
    runtime = any(part.runtime for part in parts) or len(join.inputs) > _MAX_JOINED
    return Origins(tuple(j for j in joined if j.strip("*" + separator)), (), runtime)


def leaves_assets(filename: str) -> bool:
    """Whether an asset file name names a file outside the assets directory (``../x``, ``/x``, ``C:x``)."""
    parts = filename.replace("\\", "/").split("/")
    return filename.startswith(("/", "\\")) or ".." in parts or (parts[0].endswith(":") and len(parts[0]) == 2)


def _add_asset(filename: str, files: dict[str, None], constants: dict[str, None]) -> None:
    """An asset file of the model, or, when its name leaves the assets directory, the path the
    loader reads instead (a path like any other)."""
    if leaves_assets(filename):
        constants[f"assets/{filename}"] = None
    else:
        files[filename] = None


def _graph_ref(ref: str) -> str:
    return ref[1:] if ref.startswith("^") else ref


def _output_position(scope: Scope, ref: str) -> int:
    """Which output of its node ``ref`` reads (``x:2`` in a graph, ``x:output:2`` in a function)."""
    return output_index(ref) if scope.function is None else function_input(ref).element


def _argument(index: GraphIndex, scope: Scope, arg: int) -> list[tuple[Scope, str]] | None:
    """What every call site passes as argument ``arg`` of ``scope``'s function (None: not known)."""
    if scope.nesting is not None or scope.function is None:
        return None
    found = []
    for caller in callers(index, scope.function):
        ref = call_input(caller.node, scope.function, arg, len(scope.args))
        if ref is None:
            ref = _element(caller, arg)
        if ref is None:
            return None
        found.append((caller.scope, ref))
    return found


def _element(caller: Caller, arg: int) -> str | None:
    """Component ``arg`` of the elements a ``tf.data`` function gets, when its input dataset is made of
    tensors of the graph (``from_tensors``, ``from_tensor_slices``): the tensor it is (a slice of)."""
    node = caller.node
    if "Targuments" not in node.proto.attr or not node.inputs:
        return None
    dataset = _source(caller.scope, node.inputs[0])
    for _ in range(_MAX_DATASET_CHAIN):
        if isinstance(dataset, int) or dataset is None or dataset.op not in ELEMENT_KEEPING or not dataset.inputs:
            break
        dataset = _source(caller.scope, dataset.inputs[0])
    if isinstance(dataset, int) or dataset is None or dataset.op not in ELEMENT_SOURCES:
        return None
    return dataset.inputs[arg] if arg < len(dataset.inputs) else None


def _bound_input(index: GraphIndex, scope: Scope, arg: int) -> Origins | None:
    """What a TF2 SavedModel's object graph binds to argument ``arg`` of ``scope``'s function: a captured
    asset, constant or variable, or (an argument before the captures) whatever its caller passes."""
    meta_graph = index.model.meta_graph
    if scope.nesting is not None or scope.function is None or scope.function not in \
            meta_graph.object_graph_def.concrete_functions:
        return None
    bound = meta_graph.object_graph_def.concrete_functions[scope.function].bound_inputs
    position = arg - (len(scope.args) - len(bound))
    nodes = meta_graph.object_graph_def.nodes
    if position < 0:
        return Origins(runtime=True)  # an argument the loaded function's caller passes
    if position >= len(bound) or not 0 <= bound[position] < len(nodes):
        return None
    obj = nodes[bound[position]]
    kind = obj.WhichOneof("kind")
    if kind == "asset":
        assets = meta_graph.asset_file_def
        number = obj.asset.asset_file_def_index
        return Origins(assets=(assets[number].filename if 0 <= number < len(assets) else "",))
    if kind == "constant":
        const = index.nodes.get(op_name(obj.constant.operation))
        return Origins(constants=tuple(_strings(const))) if const is not None and const.op in CONST_OPS \
            else Origins(runtime=True)
    if kind == "variable":
        stored = _stored(index, ("object", bound[position]))
        return Origins(constants=stored) if stored else Origins(runtime=True)
    return Origins(runtime=True)


def _function_assignments(index: GraphIndex, scope: Scope, arg: int) -> list[tuple[Scope, str]]:
    """When argument ``arg`` of ``scope``'s function is a TF2 variable the object graph binds, the
    values any saved function assigns to that variable (``AssignVariableOp`` on its handle)."""
    meta_graph = index.model.meta_graph
    functions = meta_graph.object_graph_def.concrete_functions
    if scope.nesting is not None or scope.function is None or scope.function not in functions:
        return []
    bound = functions[scope.function].bound_inputs
    position = arg - (len(scope.args) - len(bound))
    nodes = meta_graph.object_graph_def.nodes
    if not 0 <= position < len(bound) or not 0 <= bound[position] < len(nodes) or \
            nodes[bound[position]].WhichOneof("kind") != "variable":
        return []
    table: dict[int, list[tuple[Scope, str]]] = index.memo.setdefault("function_assignments", {})
    variable = bound[position]
    if variable not in table:
        table[variable] = []
        for name, function in functions.items():
            if variable not in function.bound_inputs or name not in index.functions:
                continue
            inner = index.function_scope(name)
            first = len(inner.args) - len(function.bound_inputs)
            handles = {inner.args[first + i] for i, bound_id in enumerate(function.bound_inputs)
                       if bound_id == variable and first + i >= 0}
            table[variable] += [(inner, node.inputs[1]) for node in inner.nodes.values()
                                if node.op in ASSIGN_OPS and len(node.inputs) > 1
                                and not function_input(node.inputs[0]).output
                                and function_input(node.inputs[0]).node in handles]
    return table[variable]


def _stored(index: GraphIndex, variable: VariableRef) -> tuple[str, ...] | None:
    """The string values the model's checkpoint holds for ``variable``, when someone said how to read them."""
    reader: StoredStrings | None = index.memo.get("stored_strings")
    return reader(variable) if reader is not None else None


def _assigned_values(index: GraphIndex, variable: Node) -> Iterator[str]:
    """The values graph nodes assign to ``variable`` (its initializer among them)."""
    for name in index.data_consumers.get(variable.name, ()):
        node = index.nodes[name]
        if node.op in ASSIGN_OPS and len(node.inputs) > 1 and op_name(node.inputs[0]) == variable.name:
            yield node.inputs[1]


def _strings(node: Node) -> list[str]:
    from metainspect.graph.saver import string_values

    return string_values(node.proto)


def _first_string(node: Node) -> str:
    values = _strings(node)
    return values[0] if values else ""

