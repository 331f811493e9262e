"""Graph traversal shared by the checks: every node wherever it sits, and what an output needs.

:meth:`GraphIndex.scan` visits the nodes of the graph, of every library function body and of
GraphDefs serialized inside attributes (``tf.data`` graphs held in string constants,
``graph_def`` attrs of custom ops), each as a :class:`Site` saying where it is.
:func:`upstream` is the one backward walk (from output tensors through data and control
inputs, stopping at fed tensors, at given op types or names); :func:`downstream` the forward
one; :func:`feeds_needed` names the placeholders an output cannot be computed without;
:func:`forward_masks` propagates "depends on" bits forward. :func:`follow` and
:func:`variable_behind` are the one rule for seeing through identities and variable reads.
Everything is linear in the graph size and built once per
:class:`~metainspect.graph.model.Model` (:func:`index_of`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from metainspect.graph.model import Function, Node
from metainspect.graph.names import op_name, tensor_name
from metainspect.graph.ops import IDENTITY_OPS, PLACEHOLDER_OPS, VARIABLE_OPS, VARIABLE_READ_OPS

if TYPE_CHECKING:
    from metainspect.graph.model import Model

T = TypeVar("T")

#: the top-level graph's label in :attr:`Site.where`
GRAPH = "graph"
#: function references followed inside function references' attrs, at most
_MAX_FUNC_NESTING = 8
#: serialized GraphDefs nested deeper than this are not opened
MAX_NESTING = 4
_DT_STRING = 7
_OP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_>.]*$")
#: how a nested GraphDef was stored: ``plain``, ``base64``, ``zlib of serialized tensor``… (:func:`parse_graph_def`)
Encoding = str
#: the longest chain of pass-through ops (reads, identities) followed; see :func:`follow`
MAX_CHAIN = 64


class Site(NamedTuple):
    """A node and where it sits.

    ``function`` names the library function whose body holds it (None at graph level);
    ``host`` is the site whose attribute held the serialized GraphDef this node comes from
    (None for nodes of the model's own graph and functions), and ``scope`` then holds the
    nested graph's (or nested function's) nodes; :meth:`GraphIndex.scope` gives any site's.
    """

    node: Node
    where: str
    function: str | None = None
    host: Site | None = None
    scope: Scope | None = None

    def outermost(self) -> Site:
        """The site in the model's own graph or functions that (transitively) holds this one."""
        site = self
        while site.host is not None:
            site = site.host
        return site


class Nesting(NamedTuple):
    """How a GraphDef was found inside a node: the attr, the element of a string tensor (None for a
    scalar or a string attr), how it was stored (``plain``, ``base64``, ``zlib of serialized tensor``…: see
    :func:`parse_graph_def`), and how deep (1: in the model's own graph)."""

    attr: str
    element: int | None
    encoding: Encoding
    depth: int
    #: the names of the nested GraphDef's functions (what its nodes can call as ops)
    library: frozenset[str] = frozenset()

    def stored(self, place: str) -> str:
        """How the GraphDef is stored, in words: ``base64 of a GraphDef in attr 'value' element 3``."""
        how = "" if self.encoding == "plain" else f"{self.encoding} of a "
        return f"{how}GraphDef in {place}" + ("" if self.element is None else f" element {self.element}")


class Scope:
    """The nodes that a node's inputs can name: a graph (the model's or a nested one) or one function body.

    ``args`` are a function's input argument names (empty for a graph); ``nesting`` says where a
    nested GraphDef was found (None for the model's own graph and library).
    """

    __slots__ = ("args", "function", "nesting", "nodes")

    def __init__(self, nodes: dict[str, Node], function: str | None = None, args: tuple[str, ...] = (),
                 nesting: Nesting | None = None) -> None:
        self.nodes = nodes
        self.function = function
        self.args = args
        self.nesting = nesting

    @classmethod
    def of_function(cls, fn: Function, nesting: Nesting | None = None) -> Scope:
        return cls({node.name: node for node in fn.nodes}, fn.name, tuple(name for name, _ in fn.inputs), nesting)


class GraphIndex:
    """Lookups over one model's graph, each built on first use."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.nodes: dict[str, Node] = model.nodes_by_name()
        self._deps: dict[str, tuple[str, ...]] | None = None
        self._consumers: dict[str, list[str]] | None = None
        self._data_consumers: dict[str, list[str]] | None = None
        self._functions: dict[str, Function] | None = None
        self._callees: dict[str, frozenset[str]] = {}
        self._inner: list[Site] | None = None
        self._scopes: dict[str, Scope] = {}
        #: results the checks derive from this model once (the signature proposal, paths…)
        self.memo: dict[Any, Any] = {}

    def scope(self, site: Site) -> Scope:
        """The nodes and arguments ``site``'s inputs refer to."""
        if site.scope is not None:
            return site.scope
        return self.graph_scope() if site.function is None else self.function_scope(site.function)

    def graph_scope(self) -> Scope:
        """The model's own graph as a scope."""
        if GRAPH not in self._scopes:
            self._scopes[GRAPH] = Scope(self.nodes)
        return self._scopes[GRAPH]

    def function_scope(self, name: str) -> Scope:
        """The body of library function ``name`` as a scope (KeyError when there is none)."""
        if name not in self._scopes:
            self._scopes[name] = Scope.of_function(self.functions[name])
        return self._scopes[name]

    @property
    def deps(self) -> dict[str, tuple[str, ...]]:
        """Node name -> the nodes it takes data or control inputs from (absent ones included)."""
        if self._deps is None:
            self._deps = {name: tuple([op_name(i) for i in node.inputs]) + node.control_inputs
                          for name, node in self.nodes.items()}
        return self._deps

    @property
    def consumers(self) -> dict[str, list[str]]:
        """Node name -> names of the nodes taking it as a data or control input."""
        if self._consumers is None:
            consumers: dict[str, list[str]] = {}
            for name, deps in self.deps.items():
                for dep in deps:
                    consumers.setdefault(dep, []).append(name)
            self._consumers = consumers
        return self._consumers

    @property
    def data_consumers(self) -> dict[str, list[str]]:
        """Node name -> names of the nodes taking one of its outputs as a data input."""
        if self._data_consumers is None:
            consumers: dict[str, list[str]] = {}
            for name, node in self.nodes.items():
                for ref in node.inputs:
                    consumers.setdefault(op_name(ref), []).append(name)
            self._data_consumers = consumers
        return self._data_consumers

    @property
    def functions(self) -> dict[str, Function]:
        """The function library by name."""
        if self._functions is None:
            self._functions = {fn.name: fn for fn in self.model.functions()}
        return self._functions

    def callees(self, node: Node) -> set[str]:
        """Library functions a node calls: as its op (a Defun), through ``func`` attrs (and the
        functions those name in their own attrs), and for ``SymbolicGradient`` the gradient function
        the library registers for the function it differentiates."""
        names = set(function_refs(node))
        if node.op in self.functions:
            names.add(node.op)
        if node.op == "SymbolicGradient":
            gradients = self._library_facts()[0]
            names |= {gradients[name] for name in list(names) if name in gradients}
        return names & self.functions.keys()

    def _library_facts(self) -> tuple[dict[str, str], dict[str, set[str]]]:
        """The library's registered gradients (function -> gradient function), and its functions by the
        ``api_implements`` name they share (Grappler may run any of them in place of another)."""
        if "library_facts" not in self.memo:
            library = self.model.graph_def.library
            gradients = {g.function_name: g.gradient_func for g in library.gradient}
            alternatives: dict[str, set[str]] = {}
            for fn in library.function:
                if "api_implements" in fn.attr and fn.attr["api_implements"].s:
                    alternatives.setdefault(fn.attr["api_implements"].s.decode("utf-8", "replace"), set()).add(
                        fn.signature.name)
            self.memo["library_facts"] = (gradients, alternatives)
        return self.memo["library_facts"]  # type: ignore[no-any-return]

    def called_functions(self, node_names: Iterable[str]) -> set[str]:
        """Every library function reachable from these graph nodes through calls, transitively."""
        if not self.functions:
            return set()
        return self.functions_reached(fn for name in node_names if (node := self.nodes.get(name)) is not None
                                      for fn in self.callees(node))

    def functions_reached(self, functions: Iterable[str]) -> set[str]:
        """These library functions and every function they call, transitively (with the functions
        implementing the same ``api_implements`` name: Grappler swaps them in, as for Keras LSTMs)."""
        pending = [fn for fn in functions if fn in self.functions]
        seen: set[str] = set()
        implementing = {name: api for api, names in self._library_facts()[1].items() for name in names}
        while pending:
            fn = pending.pop()
            if fn not in seen:
                seen.add(fn)
                pending.extend(self._function_callees(fn))
                if fn in implementing:
                    pending.extend(n for n in self._library_facts()[1][implementing[fn]] if n in self.functions)
        return seen

    def _function_callees(self, fn: str) -> frozenset[str]:
        if fn not in self._callees:
            found: set[str] = set()
            for node in self.functions[fn].nodes:
                found |= self.callees(node)
            self._callees[fn] = frozenset(found)
        return self._callees[fn]

    def calls_own_function(self, site: Site) -> bool:
        """Whether the site's node calls a function of its own graph's library as an op (the model's
        library for the model's nodes, the nested GraphDef's for its nodes: never another's)."""
        if site.scope is not None and site.scope.nesting is not None:
            return site.node.op in site.scope.nesting.library
        return site.node.op in self.functions

    def inner_sites(self) -> list[Site]:
        """The nodes of library functions and of GraphDefs nested in attributes (anywhere)."""
        if self._inner is None:
            top = [Site(node, GRAPH) for node in self.model.nodes() if _may_hold_graph(node)]
            self._inner = _function_sites(self.functions.values(), GRAPH, None)
            self._inner += _nested_sites(top + self._inner, 1, [MAX_INFLATED])
        return self._inner

    def scan(self, classify: Callable[[Node], T | None]) -> list[tuple[Site, T]]:
        """``(site, label)`` for every node anywhere that ``classify`` labels (returns non-None).

        Graph-level nodes become :class:`Site` objects only when labelled, which keeps a scan
        of a large graph cheap.
        """
        found = [(Site(node, GRAPH), label) for node in self.model.nodes()
                 if (label := classify(node)) is not None]
        found += [(site, label) for site in self.inner_sites() if (label := classify(site.node)) is not None]
        return found


def index_of(model: Model) -> GraphIndex:
    """The (shared, cached) index of a model.

    Kept on the model itself: a module-level WeakKeyDictionary would never let a model go,
    since its index refers back to it.
    """
    index: GraphIndex | None = model.__dict__.get(_INDEX_ATTR)
    if index is None:
        index = model.__dict__[_INDEX_ATTR] = GraphIndex(model)
    return index


_INDEX_ATTR = "_graph_index"


# -- regions ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Region:
    """A part of the model: graph nodes plus the library functions they call."""

    nodes: frozenset[str]
    functions: frozenset[str]

    def __contains__(self, site: object) -> bool:
        """A site is in the region when its outermost holder is (nested graphs count through their host)."""
        if not isinstance(site, Site):
            return False
        if site.host is not None:
            site = site.outermost()
        return site.function in self.functions if site.function else site.node.name in self.nodes


def region(index: GraphIndex, nodes: Iterable[str]) -> Region:
    """These graph nodes and every function they call, transitively."""
    names = frozenset(nodes)
    return Region(names, frozenset(index.called_functions(names)))


def inference_path(index: GraphIndex, outputs: Iterable[str], fed: Collection[str] = ()) -> Region:
    """What the outputs depend on when ``fed`` tensors are fed: their ancestors and called functions."""
    key = ("path", tuple(outputs), tuple(fed))
    if key not in index.memo:
        index.memo[key] = region(index, upstream(index, key[1], fed=key[2]))
    return index.memo[key]  # type: ignore[no-any-return]


# -- walks --------------------------------------------------------------------------------------

def upstream(index: GraphIndex, roots: Iterable[str], *, fed: Collection[str] = (),
             stop_ops: Collection[str] = (), exclude: Collection[str] = (),
             inputs: Callable[[Node], Iterable[str]] | None = None) -> set[str]:
    """Names of the nodes ``roots`` (op or tensor names) depend on, the roots' own nodes included.

    Walks data and control inputs backwards (or the references ``inputs`` gives for a node).
    A ``fed`` tensor is a boundary: the nodes computing it are not needed unless something else
    needs them. A node whose op is in ``stop_ops`` is reached but not looked behind; a node in
    ``exclude`` is never entered. Inputs naming absent nodes are skipped.
    """
    boundary = {tensor_name(t) for t in fed}
    cut = {op_name(t) for t in boundary}
    nodes = index.nodes
    deps = index.deps
    stack = [name for name in (op_name(t) for t in roots if tensor_name(t) not in boundary)
             if name in nodes and name not in exclude]
    seen = set(stack)
    while stack:
        name = stack.pop()
        node = nodes[name]
        if stop_ops and node.op in stop_ops:
            continue
        if inputs is not None:
            found: Iterable[str] = [op_name(ref) for ref in inputs(node)]
        else:
            found = deps[name]
            if cut and not cut.isdisjoint(found):
                found = tuple(op_name(i) for i in node.inputs if tensor_name(i) not in boundary) + node.control_inputs
        for dep in found:
            if dep not in seen and dep in nodes and dep not in exclude:
                seen.add(dep)
                stack.append(dep)
    return seen


def downstream(index: GraphIndex, start: Iterable[str], *, control: bool = True) -> set[str]:
    """``start`` and every node consuming them, transitively (through control edges too when ``control``)."""
    consumers = index.consumers if control else index.data_consumers
    seen = set(start)
    stack = list(seen)
    while stack:
        for consumer in consumers.get(stack.pop(), ()):
            if consumer not in seen:
                seen.add(consumer)
                stack.append(consumer)
    return seen


def follow(nodes: Mapping[str, Node], ref: str, through: Collection[str] = IDENTITY_OPS) -> str:
    """The tensor at the end of a chain of ``through`` ops starting at tensor ``ref``.

    Each step goes to the first data input of a node whose op is in ``through``; the walk
    stops at any other node, at an absent one, or after :data:`MAX_CHAIN` steps.
    """
    for _ in range(MAX_CHAIN):
        node = nodes.get(op_name(ref))
        if node is None or node.op not in through or not node.inputs:
            break
        ref = node.inputs[0]
    return ref


def variable_behind(nodes: Mapping[str, Node], ref: str) -> Node | None:
    """The variable op tensor ``ref`` is, or reads through a chain of variable reads; else None.

    The one variable-read rule: a read is an op of ``VARIABLE_READ_OPS`` (Identity, Snapshot,
    ReadVariableOp…) taking the variable, or another read of it, as its first input; chains
    are followed :data:`MAX_CHAIN` deep (real graphs read through one to three ops; the bound
    keeps a hostile chain or a cycle linear).
    """
    node = nodes.get(op_name(follow(nodes, ref, VARIABLE_READ_OPS)))
    return node if node is not None and node.op in VARIABLE_OPS else None


def is_variable_read(nodes: Mapping[str, Node], node: Node) -> bool:
    """True for a read of a variable (see :func:`variable_behind`)."""
    return node.op in VARIABLE_READ_OPS and bool(node.inputs) and variable_behind(nodes, node.inputs[0]) is not None


def reads_of(index: GraphIndex, variable: str) -> set[str]:
    """The nodes reading ``variable`` directly or through other reads (the rule of :func:`variable_behind`)."""
    nodes = index.nodes
    found: set[str] = set()
    level = [variable]
    for _ in range(MAX_CHAIN):
        next_level = []
        for source in level:
            for name in index.data_consumers.get(source, ()):
                node = nodes[name]
                if name not in found and node.op in VARIABLE_READ_OPS and op_name(node.inputs[0]) == source:
                    found.add(name)
                    next_level.append(name)
        if not next_level:
            break
        level = next_level
    return found


@dataclass(frozen=True)
class Feeds:
    """The placeholders some outputs depend on: ``required`` ones and ``optional`` ones (with a default)."""

    required: list[str]
    optional: list[str]


def feeds_needed(index: GraphIndex, tensors: Iterable[str], fed: Collection[str] = ()) -> Feeds:
    """Placeholders the output tensors depend on that are not fed, in graph order."""
    needed = upstream(index, tensors, fed=fed)
    required: list[str] = []
    optional: list[str] = []
    for node in index.model.nodes():
        if node.op in PLACEHOLDER_OPS and node.name in needed:
            (optional if node.op == "PlaceholderWithDefault" else required).append(node.name)
    return Feeds(required, optional)


def forward_masks(index: GraphIndex, bits: dict[str, int], stops: Collection[str] = (),
                  barrier: Collection[str] = ()) -> dict[str, int]:
    """For every node downstream of a source (a key of ``bits``), the OR of the bits of the
    sources it depends on through data and control edges.

    A node in ``stops`` keeps only its own bit (a fed tensor cuts what is behind it); a node in
    ``barrier`` receives bits but passes none on. A worklist over consumers: each node is
    revisited only when it gains a bit, so the cost is the reached region times a few, cycles
    (while loops) included.
    """
    consumers = index.consumers
    mask = dict(bits)
    work = list(bits)
    while work:
        name = work.pop()
        if name in barrier:
            continue
        value = mask[name]
        for consumer in consumers.get(name, ()):
            if consumer in stops:
                continue
            old = mask.get(consumer, 0)
            if old | value != old:
                mask[consumer] = old | value
                work.append(consumer)
    return mask


def function_refs(node: Node) -> Iterator[str]:
    """Names of the functions a node's ``func`` / ``list(func)`` attrs refer to, and those named in
    the attrs of these references (a function passed to a function), 8 levels deep."""
    pending = [(value, 0) for value in node.proto.attr.values()]
    while pending:
        value, depth = pending.pop()
        kind = value.WhichOneof("value")
        refs = [value.func] if kind == "func" else list(value.list.func) if kind == "list" else []
        for ref in refs:
            yield ref.name
            if depth < _MAX_FUNC_NESTING:
                pending += [(inner, depth + 1) for inner in ref.attr.values()]


# -- nested GraphDefs ---------------------------------------------------------------------------

def _function_sites(functions: Iterable[Function], where: str, host: Site | None,
                    nesting: Nesting | None = None) -> list[Site]:
    sites: list[Site] = []
    for fn in functions:
        label = f"function {fn.name}" if where == GRAPH else f"function {fn.name} of {where}"
        scope = Scope.of_function(fn, nesting) if host is not None else None
        sites.extend(Site(node, label, fn.name, host, scope) for node in fn.nodes)
    return sites


def _nested_sites(hosts: list[Site], depth: int, budget: list[int]) -> list[Site]:
    """Sites of the GraphDefs serialized in the hosts' attrs, and of GraphDefs nested in those
    (``budget[0]``: bytes compressed strings may still inflate to, for the whole model)."""
    found: list[Site] = []
    for host in hosts:
        if not _may_hold_graph(host.node):
            continue
        for (attr, element, encoding), graph_def in nested_graph_defs(host.node, budget):
            nesting = Nesting(attr, element, encoding, depth)
            found += graph_def_sites(graph_def, nesting, host,
                                     f"{nesting.stored(f'attr {attr!r}')} of {host.node.name} ({host.where})", budget)
    return found


def graph_def_sites(graph_def: Any, nesting: Nesting, host: Site, label: str, budget: list[int]) -> list[Site]:
    """The sites of one nested GraphDef held by ``host`` (its graph and functions, labelled ``label``),
    and of the GraphDefs nested in it, :data:`MAX_NESTING` deep."""
    nesting = nesting._replace(library=frozenset(fn.signature.name for fn in graph_def.library.function))
    functions = [Function(fn.signature.name, [(a.name, "") for a in fn.signature.input_arg], [],
                          [Node.from_proto(p) for p in fn.node_def]) for fn in graph_def.library.function]
    nodes = [Node.from_proto(p) for p in graph_def.node]
    scope = Scope({node.name: node for node in nodes}, nesting=nesting)
    inner = [Site(node, label, None, host, scope) for node in nodes]
    inner += _function_sites(functions, label, host, nesting)
    if nesting.depth < MAX_NESTING:
        inner += _nested_sites(inner, nesting.depth + 1, budget)
    return inner


def _may_hold_graph(node: Node) -> bool:
    """Whether any attr of the node holds a string long enough to be a GraphDef (a cheap first look)."""
    for value in node.proto.attr.values():
        kind = value.WhichOneof("value")
        if kind == "s":
            if len(value.s) >= _MIN_GRAPH:
                return True
        elif kind == "list":
            if value.list.s:
                return True
        elif kind == "tensor" and value.tensor.dtype == _DT_STRING:
            return True
    return False


NestedGraph = tuple[tuple[str, int | None, Encoding], Any]


def nested_graph_defs(node: Node, budget: list[int] | None = None) -> Iterator[NestedGraph]:
    """GraphDefs serialized in a node's string values: ``((attr, element, encoding), GraphDef)``.

    Every string attr of every op (a constant's ``value``, a custom op's attrs, an ``_``-prefixed
    attr TensorFlow ignores on a stock op), every element of a string list or string tensor, however
    stored (see :func:`parse_graph_def`, which ``budget`` is passed to). The cost is linear in the
    bytes the node holds (and the inflation budget): a cheap test of each string's first byte keeps
    the rest of a vocabulary from being parsed.
    """
    attrs = node.proto.attr
    for attr in attrs:
        value = attrs[attr]
        kind = value.WhichOneof("value")
        if kind == "s":
            candidates: Sequence[bytes] = (value.s,)
        elif kind == "list":
            candidates = value.list.s
        elif kind == "tensor" and value.tensor.dtype == _DT_STRING:
            candidates = value.tensor.string_val
        else:
            continue
        single = len(candidates) == 1
        for element, blob in enumerate(candidates):
            found = parse_graph_def(blob, budget)
            if found is not None:
                yield (attr, None if single else element, found[1]), found[0]


#: first bytes of a serialized GraphDef: a tag of field node (1), library (2), version (3), versions (4)
#: or debug_info (5), in whatever order a writer put them
_GRAPH_TAGS = frozenset({0x0A, 0x12, 0x18, 0x22, 0x2A})
#: first bytes of the wrappers a GraphDef can hide in: a MetaGraphDef (any of its first seven fields),
#: a SavedModel or a serialized TensorProto (a varint field 1: schema version, dtype)
_META_GRAPH_TAGS = frozenset({0x0A, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A})
_VARINT_FIELD_1 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"
_ZLIB_LEAD = 0x78
#: first characters of base64 text whose bytes start like any of the above (a byte's top six bits)
_BASE64_LEADS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[byte >> 2]
    for byte in (*_GRAPH_TAGS, *_META_GRAPH_TAGS, _VARINT_FIELD_1, _GZIP_MAGIC[0], _ZLIB_LEAD))
#: base64 text, standard or URL-safe alphabet, padded or not, broken into lines or not
_BASE64 = re.compile(rb"[A-Za-z0-9+/\s]+={0,2}\s*|[A-Za-z0-9_\-\s]+={0,2}\s*")
#: the shortest serialized GraphDef with one named node (node tag, length, name tag, length, name)
_MIN_GRAPH = 5
#: length-delimited fields of one message looked into at most
_MAX_FIELDS = 4096
#: wrappers unwrapped one inside another at most (base64 of zlib of a serialized tensor…)
_MAX_WRAPPING = 8
#: bytes compressed strings may inflate to, all of them together, in one call (more is not looked at)
MAX_INFLATED = 64 << 20


def parse_graph_def(blob: bytes, budget: list[int] | None = None) -> tuple[Any, Encoding] | None:
    """``blob`` as a GraphDef when it plausibly is one, else None (never raises), with how it was stored.

    ``plain`` bytes; a ``meta graph`` or ``saved model`` holding one; one element of a ``serialized
    tensor`` of strings; ``zlib`` or ``gzip`` compressed (inflating to ``budget[0]`` bytes at most, which
    it lowers: one budget shared by many calls bounds them all; :data:`MAX_INFLATED` by default);
    ``base64`` text (either alphabet, padded or not, in lines or not); and these inside each other
    (``base64 of zlib``), :data:`_MAX_WRAPPING` deep. Only bytes starting the way one of these does
    are looked at, so a vocabulary is never parsed; a parse counts only when every node (of the graph
    and of its functions) has a name and a plausible op name, and there is at least one.
    """
    return _unwrap(blob, 0, budget if budget is not None else [MAX_INFLATED])


def _unwrap(blob: bytes, depth: int, budget: list[int]) -> tuple[Any, Encoding] | None:
    """:func:`parse_graph_def` ``depth`` wrappers deep, with ``budget[0]`` bytes left to inflate."""
    if len(blob) < _MIN_GRAPH or depth > _MAX_WRAPPING:
        return None
    lead = blob[0]
    if lead in _GRAPH_TAGS and (graph_def := _parse(blob)) is not None:
        return graph_def, "plain"
    inner: list[tuple[bytes, str]] = []
    if lead in _META_GRAPH_TAGS or lead == _VARINT_FIELD_1:
        found = _in_wrapper(blob, lead)
        if found is not None:
            return found
    if lead == _VARINT_FIELD_1:
        inner += [(element, "serialized tensor") for element in _tensor_strings(blob)]
    if lead == _ZLIB_LEAD or blob[:2] == _GZIP_MAGIC:
        inflated = _inflate(blob, budget)
        if inflated is not None:
            inner.append((inflated, "gzip" if blob[:2] == _GZIP_MAGIC else "zlib"))
    if lead in _BASE64_LEADS and len(blob) >= 8 and _BASE64.fullmatch(blob):
        decoded = _base64(blob)
        if decoded is not None:
            inner.append((decoded, "base64"))
    if lead & 7 == 2 and 1 <= lead >> 3 <= 15:  # any message: its length-delimited fields (an Example's bytes…)
        inner += [(field, "message") for field in _message_fields(blob)]
    for data, encoding in inner:
        found = _unwrap(data, depth + 1, budget)
        if found is not None:
            if found[1] == "plain" or (encoding == "message" and found[1].partition(" of ")[0] == "message"):
                return found[0], encoding if found[1] == "plain" else found[1]  # messages in messages: one word
            return found[0], f"{encoding} of {found[1]}"
    return None


def _in_wrapper(blob: bytes, lead: int) -> tuple[Any, Encoding] | None:
    """The GraphDef of a serialized MetaGraphDef or SavedModel (its first meta graph holding one)."""
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    from metainspect.proto.saved_model_pb2 import SavedModel

    wrappers: list[tuple[Any, str]] = [(MetaGraphDef, "meta graph")] if lead in _META_GRAPH_TAGS else []
    if lead in (_VARINT_FIELD_1, 0x12):
        wrappers.append((SavedModel, "saved model"))
    for message, encoding in wrappers:
        try:
            parsed = message.FromString(blob)
        except Exception:  # noqa: BLE001 - protobuf raises several types on garbage
            continue
        metas = [parsed] if encoding == "meta graph" else list(parsed.meta_graphs)
        for meta in metas:
            if meta.HasField("graph_def") and _valid(meta.graph_def):
                return meta.graph_def, encoding
    return None


def _message_fields(blob: bytes) -> list[bytes]:
    """The length-delimited fields of ``blob`` read as a protobuf message (none when it is not one);
    :func:`_unwrap` looks into each, one level deeper, so the work stays linear in the bytes per level."""
    from metainspect.formats.wire import WireError, iter_fields

    try:
        fields = [bytes(v) for _, wire_type, v in iter_fields(blob) if wire_type == 2 and not isinstance(v, int)]
    except WireError:
        return []
    return fields[:_MAX_FIELDS]


def _tensor_strings(blob: bytes) -> list[bytes]:
    """The string elements of a serialized TensorProto (none when it is not one)."""
    from tensorboard.compat.proto.tensor_pb2 import TensorProto

    try:
        tensor = TensorProto.FromString(blob)
    except Exception:  # noqa: BLE001 - protobuf raises several types on garbage
        return []
    return list(tensor.string_val) if tensor.dtype == _DT_STRING else []


def _inflate(blob: bytes, budget: list[int]) -> bytes | None:
    """zlib or gzip data inflated, up to the ``budget[0]`` bytes left (None when it is neither)."""
    import zlib

    if budget[0] <= 0:
        return None
    try:
        data = zlib.decompressobj(31 if blob[:2] == _GZIP_MAGIC else 15).decompress(blob, budget[0])
    except zlib.error:
        return None
    budget[0] -= len(data)
    return data or None


def _base64(blob: bytes) -> bytes | None:
    import base64
    import binascii

    text = b"".join(blob.split()).rstrip(b"=")
    text += b"=" * (-len(text) % 4)
    try:
        if b"-" in text or b"_" in text:
            return base64.urlsafe_b64decode(text)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def _valid(graph_def: Any) -> bool:
    """At least one node, and every node (of the graph and its functions) named, with a plausible op."""
    nodes = [*graph_def.node, *(n for fn in graph_def.library.function for n in fn.node_def)]
    return bool(nodes) and all(n.name and _OP_NAME.match(n.op) for n in nodes)


def _parse(blob: bytes) -> Any:
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    try:
        graph_def = GraphDef.FromString(blob)
    except Exception:  # noqa: BLE001 - protobuf raises several types on garbage; garbage is not a graph
        return None
    return graph_def if _valid(graph_def) else None
