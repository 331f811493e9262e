"""The security check: what a model can make the process that runs it do, and when it does it.

Capabilities: running Python (``PyFunc``, ``EagerPyFunc``…), running native code (an op stock
TensorFlow does not register, ``LoadLibrary``), the network (RPC ops, the ``tf.data`` service,
a ``grpc://`` debug URL, a remote file system's URL such as ``gs://``), writing files (``WriteFile``,
debug dumps to ``file://``, ``PrintV2`` to a file, dataset cache/snapshot/save, summary writers,
checkpoint writes that are no saver's) and reading files (``ReadFile``, readers and file
datasets, a ``descriptor_source`` file, a vocabulary that is not one of the model's assets, a
checkpoint read that is no saver's). Which ops and which of their inputs or attrs name what
they touch is :mod:`metainspect.graph.ops`; where the value comes from (a constant, an asset,
run time) is :mod:`metainspect.graph.values`.

Nodes are searched everywhere :meth:`~metainspect.graph.walk.GraphIndex.scan` looks: the graph,
every library function, GraphDefs serialized in any string attr of any node (constants, custom ops'
attrs, ``_``-prefixed attrs).
Severity follows when the node runs (:mod:`metainspect.graph.phases`): on a served path or at
load time, an error for Python, native code and the network and a warning for files; off path,
information (many alike are one finding).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from contextlib import closing
from functools import lru_cache
from typing import TYPE_CHECKING, Literal, NamedTuple

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding, Severity
from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.errors import MetainspectError
from metainspect.formats.filesystem import filesystem, is_url
from metainspect.formats.graph_file import SAVED_MODEL
from metainspect.graph.endpoints import served_endpoints
from metainspect.graph.model import Model
from metainspect.graph.names import op_name
from metainspect.graph.ops import (
    CHECKPOINT_OPS,
    CODE_LOADING_OPS,
    CONSOLE_STREAMS,
    DEBUG_URL_OPS,
    FILE_READ_OPS,
    FILE_WRITE_OPS,
    LOCATION_ATTRS,
    LOCATION_INPUTS,
    NETWORK_OPS,
    NO_FILE_PREFIXES,
    PROTO_DESCRIPTOR_OPS,
    PROTOCOL_INPUTS,
    PYTHON_OPS,
    THROUGH_HANDLE,
    is_remote,
    stock_registry,
)
from metainspect.graph.phases import LOAD_TIME, OFF_PATH, SERVING, Hook, Phase, describe, phases
from metainspect.graph.saver import restore_plan, saver_checkpoint_op, unnamed_saver_op
from metainspect.graph.values import Origins, StoredStrings, VariableRef, leaves_assets, origins
from metainspect.graph.walk import (
    GRAPH,
    MAX_INFLATED,
    GraphIndex,
    Nesting,
    Region,
    Site,
    graph_def_sites,
    index_of,
    parse_graph_def,
    reads_of,
)
from metainspect.remedy import KEY_TENSOR, Remedy

if TYPE_CHECKING:
    from metainspect.checkpoint import Checkpoint
    from metainspect.graph.model import Node
    from metainspect.graph.walk import Scope

#: what a flagged node can do (the corpus's names)
Capability = Literal["python", "native", "network", "file_write", "file_read"]
#: off-path findings of one id and op listed one by one up to this many, then folded into one
SHOWN = 5
#: bytes of one checkpoint value or asset file searched for GraphDefs, and of all of them
_HELD_EACH = 16 << 20
_HELD_TOTAL = 64 << 20
#: a variable's saved string value is read for its paths when it is this small
_STORED_ELEMENTS = 64
_STORED_BYTES = 64 << 10

_IO_OPS = (FILE_READ_OPS | FILE_WRITE_OPS | NETWORK_OPS | DEBUG_URL_OPS | PROTO_DESCRIPTOR_OPS | CHECKPOINT_OPS
           | {"PrintV2"})
_IDS: dict[Capability, str] = {
    "python": "security.python-op", "native": "security.native-code", "network": "security.network",
    "file_write": "security.file-write", "file_read": "security.file-read",
}
#: severity on a served path or at load time (off path: info)
_SEVERITY: dict[Capability, Severity] = {
    "python": ERROR, "native": ERROR, "network": ERROR, "file_write": WARNING, "file_read": WARNING,
}
#: what a node with the capability does (said of one node, and of many)
_CONSEQUENCE: dict[Capability, tuple[str, str]] = {
    "python": ("calls a Python function by token: it runs only in the Python process that built the graph "
               "(elsewhere it fails, TF Serving cannot run it) and executes whatever Python is registered under "
               "that token", "call Python functions by token, which run only in the Python process that built the "
               "graph and execute whatever Python is registered under those tokens"),
    "native": ("runs native code that stock TensorFlow does not have: from a library the serving process must load",
               "run native code that stock TensorFlow does not have: from a library the serving process must load"),
    "network": ("talks to other machines over the network", "talk to other machines over the network"),
    "file_write": ("writes files on the machine that runs the model", "write files on the machine that runs the model"),
    "file_read": ("reads files from the machine that runs the model", "read files from the machine that runs the model"),
}


class Hit(NamedTuple):
    """One capability of one node, with what it touches when the graph says so."""

    site: Site
    capability: Capability
    #: files, URLs, addresses or the Python token (constants of the graph); empty when computed at run time
    targets: tuple[str, ...]


def check_security(ctx: CheckContext) -> list[Finding]:
    """Python, native code, network and file access wherever they hide, by when they run: in the
    checked meta graph, and in a SavedModel's other meta graphs (a loader asking for their tags
    runs them; they are scanned with their own signatures, ``details.meta_graph`` naming them)."""
    findings = _scan(ctx)
    model = ctx.model
    graph_file = model.graph_file
    if model.kind != SAVED_MODEL or graph_file is None or len(graph_file.meta_graphs) < 2:
        return findings
    for meta_graph in graph_file.meta_graphs:
        if meta_graph is model.meta_graph or meta_graph == model.meta_graph:
            continue
        other = Model(model.path, model.kind, model.encoding, meta_graph, model.all_tags, model.saved_model_schema_version,
                      source=model.source, graph_file=graph_file)
        tags = ",".join(meta_graph.meta_info_def.tags) or "(none)"
        for finding in _scan(CheckContext(other, ctx.checkpoint)):
            finding.details["meta_graph"] = tags
            findings.append(dataclasses.replace(
                finding, message=f"{finding.message} (in the meta graph tagged {tags}, which a loader asking "
                                 f"for these tags runs; checked here: {','.join(model.meta_graph.meta_info_def.tags)})"))
    return findings


def _scan(ctx: CheckContext) -> list[Finding]:
    """:func:`check_security` of the checked meta graph alone."""
    index = index_of(ctx.model)
    index.memo["stored_strings"] = _stored_strings(ctx.model, ctx.checkpoint) if ctx.checkpoint is not None else None
    index.memo["inputs"], index.memo["outputs"] = ctx.inputs, ctx.outputs
    index.memo["served_inputs"] = lru_cache(maxsize=1)(
        lambda: frozenset(op_name(t) for _, _, fed in served_endpoints(ctx.model, ctx.inputs, ctx.outputs) for t in fed))
    known = stock_registry().ops
    candidates = index.scan(lambda node: _candidate(node, known))
    candidates += [(site, kind) for site in _held_graph_sites(ctx, index)
                   if (kind := _candidate(site.node, known)) is not None]
    hits = [hit for site, kind in candidates for hit in _evaluate(index, site, kind)]
    if not hits:
        return []
    when = phases(index, ctx.inputs, ctx.outputs)
    served = served_endpoints(ctx.model, ctx.inputs, ctx.outputs)
    prune = list(dict.fromkeys(op_name(t) for _, outputs, _ in served for t in outputs))
    off_path = Remedy("edit", ctx.model.path, (("prune_to", tuple(prune)),)) if prune else \
        Remedy("check", ctx.model.path, (("outputs", KEY_TENSOR),))
    fix_off_path = (f"the served outputs do not need it: {off_path.text}" if prune else
                    f"nothing served or loaded runs it: name the served outputs ({off_path.text}) to see whether "
                    "they need it"), off_path
    findings = []
    for hit in hits:
        phase, hook = when.of(hit.site)
        if phase == OFF_PATH and hit.site.node.op in CHECKPOINT_OPS and unnamed_saver_op(index, hit.site):
            continue  # another Saver's machinery, which nothing served or loaded runs
        findings.append(_finding(hit, phase, hook, fix_off_path))
    return _fold(findings)


# -- what a node can do ---------------------------------------------------------------------------

def _candidate(node: Node, known: frozenset[str]) -> str | None:
    """A cheap first look by op type alone: "python", "native" (an op ``known``, the stock registry,
    lacks: maybe a call of one of the graph's functions, which :func:`_evaluate` tells), "io" or None."""
    op = node.op
    if op in _IO_OPS:
        return "io"
    if op in PYTHON_OPS:
        return "python"
    if op in CODE_LOADING_OPS or op not in known:
        return "native"
    return None


def _evaluate(index: GraphIndex, site: Site, kind: str) -> list[Hit]:
    node = site.node
    if kind == "python":
        token = _attr_strings(node, "token")
        return [Hit(site, "python", tuple(f"token {t}" for t in token))]
    if kind == "native":
        return [] if node.op not in CODE_LOADING_OPS and index.calls_own_function(site) else [Hit(site, "native", ())]
    op = node.op
    if op in CHECKPOINT_OPS and saver_checkpoint_op(index, site):
        return []
    if op in LOCATION_ATTRS:
        return _by_attr(site, op)
    found = _location(index, site)
    if found.unfed and not _assets_fed(index, site):  # not run by the loader: the asset tensors' own paths
        found = Origins(found.constants + found.unfed, (), found.runtime)
    escaped = {asset: real for asset in found.assets if (real := _outside_assets(index.model, asset))}
    if escaped:  # an asset file that is a link to a file outside the model: that file is what is read
        found = Origins(found.constants + tuple(f"assets/{a} -> {real}" for a, real in escaped.items()),
                        tuple(a for a in found.assets if a not in escaped), found.runtime)
    if op == "RemoteCall" and not found.runtime and all(_local_device(t) for t in found.constants):
        return []  # runs its function on a device of this process
    if op in NETWORK_OPS:
        return [Hit(site, "network", _with_protocol(index, site, found.constants))]
    if op in ("CacheDataset", "CacheDatasetV2") and not found.runtime and not any(found.constants):
        return []  # an empty file name caches in memory
    write = op in FILE_WRITE_OPS
    if not write and found.only_assets:
        return []  # reads the model's own asset files (or never gets a file name)
    targets = found.constants + tuple(f"asset {a}" for a in found.assets if a)
    capability: Capability = "network" if any(is_remote(t) for t in found.constants) else \
        "file_write" if write else "file_read"
    return [Hit(site, capability, targets)]


def _outside_assets(model: Model, asset: str) -> str | None:
    """Where a local SavedModel's asset file really is, when a link takes it outside ``assets/``."""
    if model.kind != SAVED_MODEL or is_url(model.path) or "\x00" in asset:
        return None  # a name with a NUL names no file: the loader fails to open it
    try:
        directory = os.path.realpath(os.path.join(os.path.dirname(model.path), "assets"))
        real = os.path.realpath(os.path.join(directory, asset))
        return real if os.path.commonpath([directory, real]) != directory else None
    except (OSError, ValueError):  # an unresolvable name (a link loop, another drive): nothing to say of it
        return None


def _local_device(target: str) -> bool:
    """A device name of the serving process itself: ``/job:localhost/…``, or one naming no job."""
    return "/job:" not in target or "/job:localhost/" in target + "/"


def _assets_fed(index: GraphIndex, site: Site) -> bool:
    """Whether the site runs while the loader feeds the asset tensors (a TF1 main op, the init-op signature)."""
    phase, hook = phases(index, index.memo.get("inputs"), index.memo.get("outputs")).of(site)
    return phase == LOAD_TIME and hook is not None and hook.feeds_assets


def _by_attr(site: Site, op: str) -> list[Hit]:
    """Ops naming what they touch in an attr: debug URLs, PrintV2's stream, descriptor sources, mmapped files."""
    node = site.node
    values = _attr_strings(node, LOCATION_ATTRS[op])
    if op in ("Copy", "CopyHost"):  # "DebugIdentity;file:///dir;0"
        values = [parts[1] for spec in values if len(parts := spec.split(";")) > 1 and parts[1]]
    elif op == "DumpTensor":  # log_dir_path/file_name, unless disabled
        enabled = "enabled" not in node.proto.attr or node.proto.attr["enabled"].b
        values = [f"{v.rstrip('/')}/{name}" for v in values for name in _attr_strings(node, "file_name") or [""]
                  if enabled]
    if op == "PrintV2":
        values = [v for v in values or ["stderr"] if v not in CONSOLE_STREAMS]
    elif op in PROTO_DESCRIPTOR_OPS:
        values = [v for v in values or ["local://"] if not v.startswith(NO_FILE_PREFIXES)]
    if not values:
        return []
    remote = tuple(v for v in values if is_remote(v))
    local = tuple(v for v in values if not is_remote(v))
    read = op in FILE_READ_OPS or op in PROTO_DESCRIPTOR_OPS
    hits = [Hit(site, "network", remote)] if remote else []
    if local:
        hits.append(Hit(site, "file_read" if read else "file_write", local))
    return hits


def _location(index: GraphIndex, site: Site) -> Origins:
    """What the node's location input can be; through the resource handle for RPC calls and summary writes."""
    node = site.node
    if node.op in THROUGH_HANDLE:
        return _through_handle(index, site)
    position = LOCATION_INPUTS.get(node.op)
    if position is None or position >= len(node.inputs):
        return Origins(runtime=True)
    return origins(index, site, node.inputs[position])


def _with_protocol(index: GraphIndex, site: Site, addresses: tuple[str, ...]) -> tuple[str, ...]:
    """``grpc://host:port`` for the tf.data service's address and protocol inputs (when both are constants)."""
    position = PROTOCOL_INPUTS.get(site.node.op)
    if position is None or position >= len(site.node.inputs):
        return addresses
    protocols = origins(index, site, site.node.inputs[position]).constants
    if len(protocols) != 1:
        return addresses
    return tuple(a if "://" in a else f"{protocols[0]}://{a}" for a in addresses)


def _through_handle(index: GraphIndex, site: Site) -> Origins:
    """The location of the op that opened the handle ``site``'s node uses: its producer (RpcClient,
    RpcServer) or another consumer of it (CreateSummaryFileWriter)."""
    scope = index.scope(site)
    if not site.node.inputs:
        return Origins(runtime=True)
    handle = _producer(scope, site.node.inputs[0])
    if handle is None:
        return Origins(runtime=True)
    openers = [handle] if handle.op in LOCATION_INPUTS else \
        [n for n in scope.nodes.values() if n.op in LOCATION_INPUTS and n.inputs and _producer(scope, n.inputs[0]) is handle]
    if not openers:
        return Origins(runtime=True)
    found = [origins(index, site._replace(node=opener), opener.inputs[LOCATION_INPUTS[opener.op]])
             for opener in openers if LOCATION_INPUTS[opener.op] < len(opener.inputs)]
    return Origins(tuple(c for o in found for c in o.constants), tuple(a for o in found for a in o.assets),
                   any(o.runtime for o in found) or not found)


def _producer(scope: Scope, ref: str) -> Node | None:
    from metainspect.graph.names import function_input

    name = op_name(ref) if scope.function is None else function_input(ref).node
    return scope.nodes.get(name)


def _attr_strings(node: Node, name: str) -> list[str]:
    attrs = node.proto.attr
    if name not in attrs:
        return []
    value = attrs[name]
    raw = [value.s] if value.WhichOneof("value") == "s" else list(value.list.s)
    return [v.decode("utf-8", "replace") for v in raw]


def _stored_strings(model: Model, checkpoint: Checkpoint) -> StoredStrings:
    """How to read the string a variable's checkpoint value holds (a path kept in a ``tf.Variable``):
    small string tensors only (:data:`_STORED_ELEMENTS` elements, :data:`_STORED_BYTES` bytes)."""
    cache: dict[VariableRef, tuple[str, ...] | None] = {}
    by_variable: dict[str, str] = {}

    def keys(variable: VariableRef) -> list[str]:
        kind, ref = variable
        if kind == "object":
            graph = checkpoint.object_graph()
            if graph is None or not isinstance(ref, int) or not 0 <= ref < len(graph.nodes):
                return []
            return [a.checkpoint_key for a in graph.nodes[ref].attributes if a.name == "VARIABLE_VALUE"]
        if not by_variable:
            by_variable.update({item.variable: item.key for item in restore_plan(model).items
                                if item.variable and not item.spec})
        return [by_variable[str(ref)]] if str(ref) in by_variable else []

    def read(variable: VariableRef) -> tuple[str, ...] | None:
        if variable not in cache:
            cache[variable] = None
            for key in keys(variable):
                if key not in checkpoint:
                    continue
                info = checkpoint.info(key)
                if info.dtype == "string" and info.size <= _STORED_ELEMENTS and info.stored_nbytes <= _STORED_BYTES:
                    try:
                        values = checkpoint.get(key).reshape(-1).tolist()
                    except MetainspectError:
                        continue  # a damaged value is restore.corrupt-tensor's finding
                    cache[variable] = tuple(bytes(v).decode("utf-8", "replace") for v in values)
        return cache[variable]

    return read


# -- GraphDefs kept outside the graph ---------------------------------------------------------------

def _held_graph_sites(ctx: CheckContext, index: GraphIndex) -> list[Site]:
    """Sites of the GraphDefs a model keeps outside its graph, in its checkpoint's string values and
    in its asset files, each held by what hands the bytes to the graph (so it runs when that runs:
    a variable's reads, not its restore). :data:`_HELD_EACH` bytes a value or file,
    :data:`_HELD_TOTAL` in all, are looked at."""
    budget, left = [MAX_INFLATED], [_HELD_TOTAL]
    sites: list[Site] = []
    for what, holder, blobs in [*_checkpoint_strings(ctx, index, left), *_asset_files(ctx, index, left)]:
        for element, blob in enumerate(blobs):
            found = parse_graph_def(blob, budget)
            if found is None:
                continue
            graph_def, encoding = found
            nesting = Nesting(what, element if len(blobs) > 1 else None, encoding, 1)
            sites += graph_def_sites(graph_def, nesting, holder,
                                     f"{nesting.stored(what)} (used by {holder.node.name})", budget)
    return sites


def _checkpoint_strings(ctx: CheckContext, index: GraphIndex,
                        left: list[int]) -> Iterator[tuple[str, Site, list[bytes]]]:
    """``(what, holder, values)`` of the checkpoint's string tensors a variable of the model restores."""
    checkpoint = ctx.checkpoint
    if checkpoint is None:
        return
    variables = {item.key: item.variable for item in restore_plan(ctx.model).items if item.variable}
    graph = checkpoint.object_graph() if OBJECT_GRAPH_KEY in checkpoint else None
    for info in checkpoint.infos():
        if info.dtype != "string" or info.name == OBJECT_GRAPH_KEY or info.stored_nbytes > min(_HELD_EACH, left[0]):
            continue
        holder = None
        if graph is not None and (node := graph.node_for_key(info.name)) is not None:
            holder = _capturer(ctx, index, node.id)
        variable = variables.get(info.name)
        if holder is None and variable is not None and variable in index.nodes:
            holder = _first_site(ctx, index, [Site(index.nodes[r], GRAPH) for r in sorted(reads_of(index, variable))]) \
                or Site(index.nodes[variable], GRAPH)
        if holder is None:
            continue
        left[0] -= info.stored_nbytes
        try:
            values = [bytes(v) for v in checkpoint.get(info.name).reshape(-1).tolist()]
        except MetainspectError:
            continue  # a damaged value is restore.corrupt-tensor's finding
        yield f"checkpoint value {info.name!r}", holder, values


def _asset_files(ctx: CheckContext, index: GraphIndex, left: list[int]) -> Iterator[tuple[str, Site, list[bytes]]]:
    """``(what, holder, [contents])`` of a SavedModel's asset files: held by the tensor fed the file's
    path (TF1) or by a function the asset is bound to (TF2)."""
    model = ctx.model
    if model.kind != SAVED_MODEL:
        return
    fs = filesystem(model.path)
    directory = fs.join(fs.dirname(model.path), "assets")
    holders: dict[int, Site] = {}
    for object_id, obj in enumerate(model.meta_graph.object_graph_def.nodes):
        if obj.WhichOneof("kind") == "asset" and obj.asset.asset_file_def_index not in holders:
            holder = _capturer(ctx, index, object_id)
            if holder is not None:
                holders[obj.asset.asset_file_def_index] = holder
    for number, asset in enumerate(model.meta_graph.asset_file_def):
        node = index.nodes.get(op_name(asset.tensor_info.name)) if asset.tensor_info.name else None
        if node is not None and number not in holders:
            holders[number] = Site(node, GRAPH)
    for number, holder in sorted(holders.items()):
        if not 0 <= number < len(model.meta_graph.asset_file_def):
            continue
        filename = model.meta_graph.asset_file_def[number].filename
        if not filename or "\x00" in filename or leaves_assets(filename):
            continue  # names no file inside assets/ (one leaving it is a path the read is flagged with)
        path = fs.join(directory, filename)
        try:
            if not is_url(path) and not os.path.isfile(path):
                continue  # only regular files are read (never a FIFO or a device a link points at)
            size = fs.size(path)
            if size > min(_HELD_EACH, left[0]):
                continue
            left[0] -= size
            with closing(fs.open(path)) as source:
                data = source.read_bytes(0, size)
        except (MetainspectError, OSError, ValueError):
            continue  # a missing or unreadable asset is the loader's error, not a capability
        yield f"asset file {filename!r}", holder, [data]


def _capturer(ctx: CheckContext, index: GraphIndex, object_id: int) -> Site | None:
    """A node of the TF2 function that gets object ``object_id`` (a variable, an asset) as a bound input
    and runs first (load time, then serving, then off path); None when no function does."""
    bound = [name for name, fn in ctx.model.meta_graph.object_graph_def.concrete_functions.items()
             if object_id in fn.bound_inputs and name in index.functions and index.functions[name].nodes]
    return _first_site(ctx, index, [Site(index.functions[name].nodes[0], f"function {name}", name) for name in bound])


def _first_site(ctx: CheckContext, index: GraphIndex, sites: list[Site]) -> Site | None:
    """The site that runs first of ``sites`` (load time, then serving, then off path); None for none."""
    if not sites:
        return None
    when = phases(index, ctx.inputs, ctx.outputs)
    order = {LOAD_TIME: 0, SERVING: 1, OFF_PATH: 2}
    return min(sites, key=lambda site: order[when.of(site)[0]])


# -- findings -------------------------------------------------------------------------------------

def _finding(hit: Hit, phase: Phase, hook: Hook | None, fix_off_path: tuple[str, Remedy]) -> Finding:
    site, capability = hit.site, hit.capability
    node = site.node
    running = phase != OFF_PATH
    severity = _SEVERITY[capability] if running else INFO
    where = "" if site.where == GRAPH else f" in {site.where}"
    shown = ", ".join(hit.targets[:3]) + (f" and {len(hit.targets) - 3} more" if len(hit.targets) > 3 else "")
    detail = f" ({shown})" if shown else ""
    consequence = _CONSEQUENCE[capability][0]
    if node.op in CODE_LOADING_OPS:
        consequence = "loads a native library into the process that runs the model"
    message = f"{node.op} node {node.name!r}{detail}{where} {consequence}; {describe(phase, hook)}"
    nesting = _nesting(site)
    details = {
        "op": node.op, "where": site.where, "function": site.function, "capability": capability, "when": phase,
        "hook": hook.label if hook else None, "on_inference_path": phase == SERVING,
        "target": hit.targets[0] if hit.targets else None, "targets": list(hit.targets), "nested_in": nesting,
    }
    fix, remedy = _fix(hit, phase, fix_off_path)
    return Finding(_IDS[capability], severity, message, node.name, fix, details, remedy)


def _nesting(site: Site) -> dict[str, object] | None:
    """Where the GraphDef holding ``site`` was found: host node, attr, element, encoding, depth."""
    if site.host is None or site.scope is None or site.scope.nesting is None:
        return None
    nesting = site.scope.nesting
    return {"node": site.host.node.name, "host_where": site.host.where, "attr": nesting.attr,
            "element": nesting.element, "encoding": nesting.encoding, "depth": nesting.depth}


def _fix(hit: Hit, phase: Phase, fix_off_path: tuple[str, Remedy]) -> tuple[str, Remedy | None]:
    if hit.capability == "python":
        return "re-implement the function with TensorFlow ops (a py_func cannot be exported), then re-export", None
    if hit.capability == "native" and phase != OFF_PATH:
        return (f"load the model only where you trust the library that provides {hit.site.node.op!r} "
                "(and the model's author); otherwise rebuild it without that op"), None
    if phase == SERVING:
        return "make the served outputs independent of it (serve other outputs, or rebuild the model)", None
    if phase != OFF_PATH:
        return ("loading runs it before any request, whatever is served: load the model only if you trust its "
                "author, or rebuild it without that op"), None
    return fix_off_path


def _fold(findings: list[Finding]) -> list[Finding]:
    """More than :data:`SHOWN` findings of one id, op and phase become one finding with the count."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in findings:
        groups.setdefault((finding.id, finding.details["op"], finding.details["when"]), []).append(finding)
    out: list[Finding] = []
    for finding in findings:
        group = groups[(finding.id, finding.details["op"], finding.details["when"])]
        if len(group) <= SHOWN:
            out.append(finding)
        elif finding is group[0]:
            out.append(_folded(group))
    return out


def _folded(group: list[Finding]) -> Finding:
    first = group[0]
    names = [f.subject if f.details["where"] == GRAPH else f"{f.subject} in {f.details['where']}" for f in group]
    listed = ", ".join(str(n) for n in names[:SHOWN]) + f" and {len(names) - SHOWN} more"
    targets = list(dict.fromkeys(t for f in group for t in f.details["targets"]))
    shown = f" ({', '.join(targets[:3])}{' and more' if len(targets) > 3 else ''})" if targets else ""
    consequence = _CONSEQUENCE[first.details["capability"]][1]
    if first.details["op"] in CODE_LOADING_OPS:
        consequence = "load native libraries into the process that runs the model"
    hooks = list(dict.fromkeys(f.details["hook"] for f in group))
    hook = Hook(first.details["when"], hooks[0], Region(frozenset(), frozenset())) if len(hooks) == 1 and hooks[0] \
        else None
    return Finding(
        first.id, first.severity, f"{len(group)} {first.details['op']} nodes ({listed}){shown} {consequence}; "
        f"{describe(first.details['when'], hook, many=True)}", first.subject, first.fix,
        {**{k: first.details[k] for k in ("op", "capability", "when", "on_inference_path")}, "count": len(group),
         "targets": targets, "nodes": [{"node": f.subject, "where": f.details["where"], "function": f.details["function"],
                                        "hook": f.details["hook"], "target": f.details["target"],
                                        "nested_in": f.details["nested_in"]} for f in group]},
        first.remedy,
    )

