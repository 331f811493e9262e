"""The bench the TF security probe modules (``tf/test_tf_security_probes*.py``) build their models on.

A probe module registers builders in a :class:`Probes` (``@PROBES.probe(Expect(...))``; no expectation makes a
benign control), builds them lazily through a module-scoped :class:`Workshop`, and runs the three checks below
(:func:`assert_reports_payload`, :func:`assert_no_security_finding`, :func:`run_proof`). TensorFlow is imported
only by the builders and proofs, so importing this module does not load it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from metainspect.check import run_checks
from metainspect.check.findings import Finding

#: the request every served probe gets
X = [1.0, 2.0]
#: severity of a finding on a served path or at load time (off path: info), as the scan documents it
SEVERITY = {"python": "error", "native": "error", "network": "error", "file_write": "warning", "file_read": "warning"}


class Expect(NamedTuple):
    """One security finding a probe must give."""

    capability: str
    when: str
    #: the op the finding names (None: any)
    op: str | None = None
    #: a substring of one of the finding's targets (None: not checked)
    target: str | None = None

    def severity(self) -> str:
        return "info" if self.when == "off_path" else SEVERITY[self.capability]


#: run by the proof test; asserts what the payload did
Proof = Callable[[], None]
Builder = Callable[["Lab", Any], "Proof | None"]


@dataclass(frozen=True)
class Probe:
    """A builder and what `check` must say of the model it builds."""

    name: str
    expect: tuple[Expect, ...]
    build: Builder
    #: whether ``build`` returns a proof (False: never run, e.g. it would reach the network)
    proof: bool
    #: why `check` misses the payload (a known limitation): its expectation test is a strict xfail
    limitation: str | None = None


class Probes(dict[str, Probe]):
    """A module's probes by name, registered by the :meth:`probe` decorator."""

    def probe(self, *expect: Expect, proof: bool = True, limitation: str | None = None
              ) -> Callable[[Builder], Builder]:
        """Registers a builder under its function's name; no ``expect`` makes it a benign control."""
        def register(build: Builder) -> Builder:
            name = getattr(build, "__name__", "")
            self[name] = Probe(name, expect, build, proof, limitation)
            return build
        return register

    def attacks(self) -> list[Any]:
        """Parameters of the expectation test: every probe with an expectation (a limitation's is a strict xfail)."""
        return [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=p.limitation)) if p.limitation
                else name for name, p in self.items() if p.expect]

    def controls(self) -> list[str]:
        return [name for name, p in self.items() if not p.expect]

    def proved(self) -> list[str]:
        return [name for name, p in self.items() if p.proof]


@dataclass
class Lab:
    """One probe's model folder, its sandbox (the files the payload touches) and the TF helpers builders share."""

    root: Path
    #: objects whose graphs hold the Python callbacks a proof calls (the token registry keeps weak references)
    kept: list[Any] = field(default_factory=list)
    #: appended to by the callbacks of :meth:`callback`
    fired: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sandbox.mkdir(parents=True)

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def sandbox(self) -> Path:
        return self.root / "sandbox"

    @property
    def target(self) -> Path:
        """What `check` opens: the SavedModel folder, or a bare TF1 checkpoint's meta graph."""
        return self.model if (self.model / "saved_model.pb").is_file() else self.model / "model.ckpt.meta"

    def callback(self) -> Callable[[Any], Any]:
        """An identity function for ``py_function``/``numpy_function`` that records that it ran."""
        def called(value: Any) -> Any:
            self.fired.append("called")
            return value
        return called

    def save_tf2(self, module: Any, signatures: dict[str, Any] | None = None) -> None:
        import tensorflow as tf

        tf.saved_model.save(module, str(self.model), signatures=signatures or {"serving_default": module.serve})
        self.kept.append(module)

    def serve_tf2(self, signature: str = "serving_default", x: Any = None) -> dict[str, Any]:
        """Loads with the TF2 loader and sends ``x`` (default :data:`X`) to ``signature``."""
        import tensorflow as tf

        loaded = tf.saved_model.load(str(self.model))
        outputs = loaded.signatures[signature](x=tf.constant(X) if x is None else x)
        return {key: value.numpy() for key, value in outputs.items()}

    def save_tf1(self, session: Any, inputs: dict[str, Any], outputs: dict[str, Any], main_op: Any = None,
                 **options: Any) -> None:
        """A ``serve`` SavedModel of ``session``'s graph (``options``: ``saver``, ``assets_collection``...)."""
        import tensorflow as tf

        builder = tf.compat.v1.saved_model.Builder(str(self.model))
        signature = tf.compat.v1.saved_model.predict_signature_def(inputs, outputs)
        builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"serving_default": signature},
                                             main_op=main_op, **options)
        builder.save()

    def load_tf1(self, serve: bool = True, tags: tuple[str, ...] = ("serve",), feed: Any = None
                 ) -> dict[str, Any] | None:
        """Loads with the TF1 loader (which runs the main op) and, with ``serve``, sends ``feed`` (default :data:`X`)."""
        import tensorflow as tf

        with tf.Graph().as_default(), tf.compat.v1.Session() as session:
            meta = tf.compat.v1.saved_model.load(session, list(tags), str(self.model))
            if not serve:
                return None
            signature = meta.signature_def["serving_default"]
            fetches = {key: value.name for key, value in signature.outputs.items()}
            result: dict[str, Any] = session.run(fetches, {signature.inputs["x"].name: X if feed is None else feed})
            return result

    def edit_meta_graph(self, edit: Callable[[Any], None]) -> None:
        """Rewrites ``saved_model.pb`` after ``edit`` changed its first MetaGraphDef."""
        from tensorflow.core.protobuf import saved_model_pb2

        path = self.model / "saved_model.pb"
        saved = saved_model_pb2.SavedModel.FromString(path.read_bytes())
        edit(saved.meta_graphs[0])
        path.write_bytes(saved.SerializeToString())


@dataclass
class Built:
    """A built probe: its lab, and the proof its builder returned."""

    lab: Lab
    proof: Proof | None


class Workshop:
    """Builds each probe once, when a test first asks for it."""

    def __init__(self, root: Path, probes: Probes) -> None:
        self.root = root
        self.probes = probes
        self.built: dict[str, Built] = {}

    def get(self, name: str) -> Built:
        if name not in self.built:
            import tensorflow as tf

            lab = Lab(self.root / name)
            proof = self.probes[name].build(lab, tf)
            assert (proof is not None) == self.probes[name].proof, name
            self.built[name] = Built(lab, proof)
        return self.built[name]


# -- shared builders --------------------------------------------------------------------------------

def module(tf: Any, body: Callable[[Any, Any], dict[str, Any]], **attrs: Any) -> Any:
    """A ``tf.Module`` with ``attrs`` whose ``serve(x)`` (a float vector) returns ``body(module, x)``."""
    mod = tf.Module()
    for key, value in attrs.items():
        setattr(mod, key, value)
    mod.serve = tf.function(lambda x: body(mod, x), input_signature=[tf.TensorSpec([None], tf.float32)])
    return mod


def depend(tf: Any, payload: Any, x: Any) -> Any:
    """``x``, made to depend on ``payload`` (through the data for a string, a control edge otherwise)."""
    if isinstance(payload, tf.Tensor) and payload.dtype == tf.string:
        return x + 0.0 * tf.cast(tf.reduce_sum(tf.strings.length(payload)), tf.float32)
    with tf.control_dependencies([payload]):
        return tf.identity(x)


def reduce_length(tf: Any, dataset: Any) -> Any:
    """The summed length of a string dataset's elements, as a float."""
    return tf.cast(dataset.reduce(0, lambda total, row: total + tf.strings.length(row)), tf.float32)


def reduce_sum(tf: Any, dataset: Any) -> Any:
    """The sum of an int64 dataset, as a float."""
    return tf.cast(dataset.reduce(tf.constant(0, tf.int64), lambda total, v: total + v), tf.float32)


def tf1_graph(tf: Any) -> tuple[Any, Any]:
    """Placeholder ``x`` and ``x * w`` with a variable ``w`` = [1], in the current TF1 graph."""
    x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
    w = tf.compat.v1.get_variable("w", initializer=tf.constant([1.0]))
    return x, x * w


def fails(tf: Any, run: Callable[[], object], match: str) -> None:
    """``run`` raises a TensorFlow error whose text holds ``match``."""
    with pytest.raises(tf.errors.OpError, match=match):
        run()


# -- the three checks -------------------------------------------------------------------------------

def security_findings(path: Path) -> list[Finding]:
    return [f for f in run_checks(str(path)).findings if f.id.startswith("security.")]


def matches(finding: Finding, expect: Expect) -> bool:
    details = finding.details
    return (details["capability"] == expect.capability and details["when"] == expect.when
            and expect.op in (None, details["op"])
            and (expect.target is None or any(expect.target in t for t in details["targets"])))


def describe(findings: list[Finding]) -> list[str]:
    return [f"{f.severity} {f.details['capability']}/{f.details['when']} {f.details['op']} {f.details['targets']}"
            for f in findings]


def assert_reports_payload(workshop: Workshop, name: str) -> None:
    """Every expected finding is there (capability, when, op, target), at the severity that follows."""
    found = security_findings(workshop.get(name).lab.target)
    for expect in workshop.probes[name].expect:
        hits = [f for f in found if matches(f, expect)]
        assert hits, f"{name}: no {expect} among {describe(found)}"
        assert {f.severity for f in hits} == {expect.severity()}, describe(hits)


def assert_no_security_finding(workshop: Workshop, name: str) -> None:
    found = security_findings(workshop.get(name).lab.target)
    assert not found, describe(found)


def run_proof(workshop: Workshop, name: str) -> None:
    """TensorFlow runs the probe: the payload has the effect its expectation claims (the controls run cleanly)."""
    proof = workshop.get(name).proof
    assert proof is not None
    proof()
