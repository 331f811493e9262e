"""The serving check: device pins, training-only ops on the inference path, ops stock TF lacks or
has no CPU kernel for.

The inference path is what the served outputs depend on (see
:func:`metainspect.graph.endpoints.served_endpoints`), including the bodies of the functions it calls.
Device pins and unregistered ops are looked for everywhere: graph, function library and
GraphDefs nested in attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from metainspect.check.findings import ERROR, INFO, WARNING, CheckContext, Finding, Severity
from metainspect.graph.endpoints import served_endpoints
from metainspect.graph.ops import PIPELINE_OUTPUT_OPS, is_training_op, kernel_registry, stock_registry
from metainspect.graph.phases import OFF_PATH, describe, phases
from metainspect.graph.roles import ServingRole, serving_role
from metainspect.graph.saver import saver_owns
from metainspect.graph.walk import GRAPH, GraphIndex, Region, Site, index_of, inference_path
from metainspect.remedy import KEY_TENSOR, Remedy

if TYPE_CHECKING:
    from metainspect.graph.model import Model

#: nodes listed by name in a message before "and N more"
SHOWN = 5
#: what a device string pins a node to
DeviceKind = Literal["cluster", "accelerator", "cpu"]

_LOCAL_JOB = "localhost"
_PLACEMENT_FIELDS = frozenset({"job", "replica", "task", ""})


def check_serving(ctx: CheckContext) -> list[Finding]:
    """Device pins, training-only ops on the served path, ops unknown to stock TensorFlow or without a CPU kernel."""
    index = index_of(ctx.model)
    findings = device_pins(ctx.model, index)
    findings += unknown_ops(ctx.model, index)
    findings += no_cpu_kernel(ctx, index)
    if any(serving_role(node) for node in index.nodes.values()) or \
            any(serving_role(site.node) for site in index.inner_sites()):
        for label, outputs, fed in served_endpoints(ctx.model, ctx.inputs, ctx.outputs):
            findings += training_ops_on_path(index, inference_path(index, outputs, fed), label, outputs)
    return findings


# -- device pins --------------------------------------------------------------------------------

def device_kind(device: str) -> DeviceKind:
    """"cluster" (a job other than localhost), "accelerator" (GPU, TPU…) or "cpu".

    Both spellings are understood: ``/job:ps/task:0/device:GPU:0`` and the legacy ``/gpu:0``.
    """
    fields = {}
    for part in device.strip("/").split("/"):
        key, _, value = part.partition(":")
        fields[key.lower()] = value
    job = fields.get("job")
    if (job is not None and job != _LOCAL_JOB) or (job is None and "task" in fields):
        return "cluster"
    if "device" in fields:
        kind = fields["device"].partition(":")[0]
    else:
        kind = next((key for key in fields if key not in _PLACEMENT_FIELDS), "cpu")
    return "cpu" if kind.upper() == "CPU" else "accelerator"


_PIN: dict[DeviceKind, tuple[str, Severity, str]] = {
    "cluster": ("serving.device-pin-cluster", ERROR,
                "outside that cluster the graph cannot be placed at all, even with allow_soft_placement "
                "(TensorFlow: 'Cannot assign a device for operation')"),
    "accelerator": ("serving.device-pin-accelerator", WARNING,
                    "a server without that device runs it only with allow_soft_placement"),
    "cpu": ("serving.device-pin-cpu", INFO, "harmless on CPU servers, but it keeps those ops off any GPU"),
}


def device_pins(model: Model, index: GraphIndex) -> list[Finding]:
    """One finding per device string nodes are pinned to.

    The saver's own CPU pins (TF puts every saver's RestoreV2 on the CPU) are left out.
    """
    by_device: dict[str, list[Site]] = {}
    for site, device in index.scan(lambda node: node.device or None):
        if device_kind(device) != "cpu" or not saver_owns(index, site):
            by_device.setdefault(device, []).append(site)
    findings = []
    remedy = Remedy("edit", model.path, (("clear_devices", True),))
    for device, pinned in sorted(by_device.items()):
        finding_id, severity, consequence = _PIN[device_kind(device)]
        findings.append(Finding(
            finding_id, severity,
            f"{_count(pinned, 'node')} pinned to {device} ({_names(pinned)}): {consequence}",
            device, f"clear the pins: {remedy.text}",
            {"device": device, "count": len(pinned), "nodes": _located(pinned)}, remedy,
        ))
    return findings


# -- unregistered ops ---------------------------------------------------------------------------

def unknown_ops(model: Model, index: GraphIndex) -> list[Finding]:
    """One finding per op name stock TensorFlow does not register (function calls excepted)."""
    registry = stock_registry()
    by_op: dict[str, list[Site]] = {}
    for site, op in index.scan(lambda node: node.op if node.op not in registry.ops else None):
        if not index.calls_own_function(site):
            by_op.setdefault(op, []).append(site)
    own_defs = {op.name for op in model.meta_graph.meta_info_def.stripped_op_list.op}
    findings = []
    for op, found in sorted(by_op.items()):
        internal = op.startswith("_")
        carried = " The graph carries its OpDef, so it was registered where the graph was built." \
            if op in own_defs else ""
        findings.append(Finding(
            "serving.unknown-op", WARNING if internal else ERROR,
            f"op {op!r} ({_count(found, 'node')}: {_names(found)}) is not registered in stock TensorFlow "
            f"{registry.tf_version}: a stock TensorFlow or TF Serving cannot load this graph."
            + (" It is an internal op (device-specific graph rewrites like MKL or XLA insert these)." if internal else "")
            + carried,
            op, ("re-export the graph without device-specific rewrites" if internal else
                 f"load the library that registers {op!r} into the server (custom op build of TF Serving), "
                 f"or rebuild the model without it"),
            {"op": op, "tf_version": registry.tf_version, "count": len(found), "nodes": _located(found),
             "op_def_in_graph": op in own_defs},
        ))
    return findings


# -- ops without a CPU kernel -------------------------------------------------------------------

def no_cpu_kernel(ctx: CheckContext, index: GraphIndex) -> list[Finding]:
    """One finding per op stock TensorFlow registers but has no CPU kernel for (``BoostedTreesBucketize``).

    In the graph an error wherever the node is: a session places every node of its graph before
    running any (the restore included), and placing one without a kernel fails. In a function,
    an error when something served or loaded calls it, else a warning (calling it fails).
    Serialized GraphDefs are not run by the model and not looked at.
    """
    registry = kernel_registry()
    found: dict[str, list[Site]] = {}
    for site, op in index.scan(lambda node: node.op if node.op in registry.no_cpu_kernel else None):
        if site.host is None:
            found.setdefault(op, []).append(site)
    findings = []
    for op, sites in sorted(found.items()):
        devices = registry.no_cpu_kernel[op]
        kernels = f"kernels only for {', '.join(devices)}" if devices else "no kernel for any device"
        at_graph = [s for s in sites if s.where == GRAPH]
        if at_graph:
            severity: Severity = ERROR
            consequence = ("a session places every node of its graph before running any, so a CPU-only TensorFlow "
                           "cannot run this graph at all, its restore included")
        else:
            when = phases(index, ctx.inputs, ctx.outputs)
            running = [s for s in sites if when.of(s)[0] != OFF_PATH]
            severity = ERROR if running else WARNING
            consequence = (f"{describe(*when.of(running[0]))}, and calling its function fails" if running else
                           "calling its function fails (nothing served or loaded calls it)")
        findings.append(Finding(
            "serving.no-cpu-kernel", severity,
            f"op {op!r} ({_count(sites, 'node')}: {_names(sites)}) is registered in stock TensorFlow "
            f"{registry.tf_version} with {kernels}: {consequence} (TensorFlow: \"No OpKernel was registered to "
            f"support Op {op!r}\")",
            op, f"rebuild the model without {op!r}, or serve it with a TensorFlow build that has a CPU kernel for it",
            {"op": op, "tf_version": registry.tf_version, "kernel_devices": list(devices), "count": len(sites),
             "nodes": _located(sites)},
        ))
    return findings


# -- training-only ops on the inference path ----------------------------------------------------

_ROLE_FINDINGS: dict[ServingRole, tuple[str, Severity, str, str]] = {
    "training": ("serving.training-op", ERROR, "optimizer or gradient ops",
                 "serving would run a training step: choose outputs that do not depend on it"),
    "input-pipeline": ("serving.input-pipeline", ERROR, "queue, reader or tf.data ops",
                       "the output reads training input instead of the request"),
    "variable-update": ("serving.variable-update", WARNING, "variable updates",
                        "every request changes the model's variables"),
    "summary": ("serving.summary-op", WARNING, "summary ops", "every request writes summaries"),
}


def training_ops_on_path(index: GraphIndex, path: Region, label: str, outputs: list[str]) -> list[Finding]:
    """One finding per kind of training-only op on the inference path."""
    by_role: dict[ServingRole, list[Site]] = {}
    for node in index.model.nodes():
        if node.name in path.nodes and (role := serving_role(node)) is not None:
            by_role.setdefault(role, []).append(Site(node, GRAPH))
    for site in index.inner_sites():
        if (role := serving_role(site.node)) is not None and site in path:
            by_role.setdefault(role, []).append(site)
    findings = []
    for role, found in by_role.items():
        found.sort(key=lambda site: not is_training_op(site.node.op))  # optimizer updates first: they say most
        finding_id, severity, what, consequence = _ROLE_FINDINGS[role]
        fix, remedy = _role_fix(index.model.path, role, found)
        findings.append(Finding(
            finding_id, severity,
            f"serving {label} runs {what}: {_names(found)}; {consequence}",
            found[0].node.name, fix,
            {"endpoint": label, "outputs": outputs, "count": len(found), "nodes": _located(found)}, remedy,
        ))
    return findings


def _role_fix(path: str, role: ServingRole, found: list[Site]) -> tuple[str, Remedy | None]:
    if role == "input-pipeline":
        feeds = [f"{s.node.name}:0" for s in found if s.where == GRAPH and s.node.op in PIPELINE_OUTPUT_OPS]
        if feeds:
            remedy = Remedy("check", path, (("inputs", {"KEY": feeds[0]}),))
            return f"feed the pipeline's output instead: {remedy.text}" + \
                (f" (also {', '.join(feeds[1:SHOWN])})" if len(feeds) > 1 else ""), remedy
        remedy = Remedy("check", path, (("inputs", KEY_TENSOR),))
        return f"feed the tensor the pipeline produces ({remedy.text}), or rebuild with a placeholder", remedy
    if role == "variable-update":
        return "pick outputs without the update dependency, or rebuild the graph for inference (training=False)", None
    if role == "summary":
        return "pick outputs that do not depend on the summaries, or rebuild without them", None
    remedy = Remedy("check", path, (("outputs", KEY_TENSOR),))
    return f"pick outputs computed before the training step ({remedy.text}), or rebuild for inference", remedy


# -- helpers ------------------------------------------------------------------------------------

def _count(items: list[Site], noun: str) -> str:
    return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"


def _names(sites: list[Site]) -> str:
    shown = ", ".join(s.node.name if s.where == GRAPH else f"{s.node.name} in {s.where}" for s in sites[:SHOWN])
    return shown + (f" and {len(sites) - SHOWN} more" if len(sites) > SHOWN else "")


def _located(sites: list[Site]) -> list[dict[str, str]]:
    return [{"node": s.node.name, "op": s.node.op, "where": s.where} for s in sites[:100]]
