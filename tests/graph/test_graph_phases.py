"""When parts of a model run (graph/phases.py), where a value comes from (graph/values.py), which
checkpoint ops are a saver's (graph/saver.py) and how serialized GraphDefs are found (graph/walk.py)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef

from metainspect.graph import walk
from metainspect.graph.model import Node, load_model
from metainspect.graph.phases import LOAD_TIME, OFF_PATH, SERVING, phases
from metainspect.graph.saver import saver_checkpoint_op, unnamed_saver_op
from metainspect.graph.values import Origins, call_input, extends_path, origins
from metainspect.graph.walk import GRAPH, Site, index_of, nested_graph_defs, parse_graph_def

from helpers.graph import GraphBuilder
from helpers.paths import REAL_MODELS, SAMPLES

SECURITY = SAMPLES / "security"


def site_of(model_index: walk.GraphIndex, name: str, function: str | None = None) -> Site:
    if function is None:
        return Site(model_index.nodes[name], GRAPH)
    (node,) = [n for n in model_index.functions[function].nodes if n.name == name]
    return Site(node, f"function {function}", function)


# -- phases ------------------------------------------------------------------------------------

def test_collections_loaders_run_and_a_fresh_start_s_init_op() -> None:
    graph = GraphBuilder().add("x", "Placeholder").add("y", "Relu", "x")
    graph.add("tables", "NoOp").add("local", "NoOp", "^tables").add("fresh", "NoOp").add("train", "NoOp")
    for collection, item in [("local_init_op", "local"), ("init_op", "fresh"), ("train_op", "train")]:
        graph.meta_graph.collection_def[collection].node_list.value.append(item)
    index = index_of(graph.model())
    when = phases(index, outputs={"y": "y:0"})
    assert when.of(site_of(index, "tables"))[0] == LOAD_TIME
    assert when.of(site_of(index, "tables"))[1].label == "collection local_init_op"  # type: ignore[union-attr]
    phase, hook = when.of(site_of(index, "fresh"))
    assert phase == OFF_PATH and hook is not None and "fresh start" in hook.label
    assert when.of(site_of(index, "train"))[1].label == "collection train_op: training"  # type: ignore[union-attr]
    assert when.of(site_of(index, "y"))[0] == SERVING
    assert when.of(site_of(index, "x")) == (SERVING, when.of(site_of(index, "y"))[1])


def test_load_time_comes_before_serving() -> None:
    """A node both served and run by the main op is reported at load time: it runs before any request."""
    graph = GraphBuilder().add("x", "Placeholder").add("shared", "Relu", "x").add("main", "NoOp", "^shared")
    graph.meta_graph.collection_def["saved_model_main_op"].node_list.value.append("main")
    index = index_of(graph.model())
    phase, hook = phases(index, outputs={"y": "shared:0"}).of(site_of(index, "shared"))
    assert phase == LOAD_TIME and hook is not None and hook.label == "collection saved_model_main_op"


def test_tf2_object_graph_functions() -> None:
    index = index_of(load_model(SECURITY / "benign_tf2_asset_table"))
    when = phases(index)
    labels = {hook.label: hook.phase for hook in when.hooks}
    assert labels["_initialize of resource 'table'"] == LOAD_TIME
    assert labels["_create_resource of resource 'table'"] == LOAD_TIME
    assert labels["saved function 'lookup', callable on the loaded model"] == SERVING
    assert labels["the SaverDef's save op: saving"] == OFF_PATH
    init = next(fn for fn in index.functions if fn.startswith("__inference__initializer"))
    (table_init,) = [n for n in index.functions[init].nodes if n.op == "InitializeTableFromTextFileV2"]
    assert when.of(Site(table_init, f"function {init}", init))[0] == LOAD_TIME


# -- values --------------------------------------------------------------------------------------

def test_asset_tables_tf1_tf2_and_a_non_asset_path() -> None:
    for case, function in [("benign_tf1_asset_table", None), ("benign_tf2_asset_table", "init")]:
        index = index_of(load_model(SECURITY / case))
        (found,) = [s for s in [Site(n, GRAPH) for n in index.model.nodes()] + index.inner_sites()
                    if s.node.op == "InitializeTableFromTextFileV2"]
        assert (found.function is None) == (function is None)
        got = origins(index, found, found.node.inputs[1])
        assert got._replace(unfed=()) == Origins(assets=("vocab.txt",))
        # a TF1 asset tensor holds the path it had where the model was built (used unless the loader feeds it)
        assert (len(got.unfed) == 1 and got.unfed[0].endswith("vocab.txt")) if function is None else got.unfed == ()
    index = index_of(load_model(SECURITY / "fr_tf1_main_op"))
    table = site_of(index, "InitializeTableFromTextFileV2")
    assert origins(index, table, table.node.inputs[1]).constants == ("/tmp/metainspect-security/fr_tf1_main_op/vocab.txt",)


def test_values_through_a_dataset_s_elements_and_a_reshape() -> None:
    index = index_of(load_model(SECURITY / "fr_graph_text_line_dataset"))
    (function,) = [f for f in index.functions if "read_one_file" in f]
    read = site_of(index, "TextLineDataset", function)
    found = origins(index, read, read.node.inputs[0])
    assert found.constants == ("/tmp/metainspect-security/fr_graph_text_line_dataset/secret.txt",)
    assert not found.runtime


def test_an_asset_name_leaving_the_assets_directory_is_a_path() -> None:
    """The loader reads assets/NAME: a NAME with '..' (or an absolute one) is a path outside the model."""
    for filename, expected in [("vocab.txt", Origins(assets=("vocab.txt",))),
                               ("../../../etc/passwd", Origins(constants=("assets/../../../etc/passwd",))),
                               ("/etc/passwd", Origins(constants=("assets//etc/passwd",)))]:
        graph = GraphBuilder().strings("vocab_path", "/build/machine/vocab.txt").add("table", "HashTableV2")
        graph.add("init", "InitializeTableFromTextFileV2", "table", "vocab_path")
        asset = graph.meta_graph.asset_file_def.add(filename=filename)
        asset.tensor_info.name = "vocab_path:0"
        index = index_of(graph.model())
        init = site_of(index, "init")
        assert origins(index, init, "vocab_path") == expected._replace(unfed=("/build/machine/vocab.txt",)), filename


def test_values_of_string_joins() -> None:
    """A join of constants is the joined strings; a part known only at run time is '*'."""
    graph = GraphBuilder().strings("bucket", "gs://bkt", "s3://other").strings("name", "secret")
    graph.add("fed", "Placeholder").add("joined", "StringJoin", "bucket", "name").add("half", "StringJoin", "bucket", "fed")
    graph.add("unknown", "StringJoin", "fed", "fed").add("read", "ReadFile", "joined")
    model = graph.model()
    next(n for n in model.graph_def.node if n.name == "joined").attr["separator"].s = b"/"
    index = index_of(model)
    read = site_of(index, "read")
    assert origins(index, read, "joined") == Origins(constants=("gs://bkt/secret", "s3://other/secret"))
    assert origins(index, read, "half") == Origins(constants=("gs://bkt*", "s3://other*"), runtime=True)
    assert origins(index, read, "unknown") == Origins(runtime=True)


def test_values_through_reordering_datasets() -> None:
    """shuffle/repeat/batch keep the elements: a function mapped over them still gets the slices' values."""
    graph = GraphBuilder().strings("paths", "gs://bkt/a.tfrecord").add("slices", "TensorSliceDataset", "paths")
    graph.add("shuffled", "ShuffleDatasetV3", "slices", "n", "s", "s2", "gen").add("repeated", "RepeatDataset", "shuffled")
    graph.add("interleaved", "InterleaveDataset", "repeated", "cycle", "block")
    model = graph.model()
    interleave = next(n for n in model.graph_def.node if n.name == "interleaved")
    interleave.attr["f"].func.name = "read_records"
    interleave.attr["Targuments"].list.SetInParent()
    fn = model.graph_def.library.function.add()
    fn.signature.name = "read_records"
    fn.signature.input_arg.add(name="path")
    fn.node_def.add(name="records", op="TFRecordDataset").input.extend(["path", "compression", "buffer"])
    index = index_of(model)
    records = site_of(index, "records", "read_records")
    assert origins(index, records, "path") == Origins(constants=("gs://bkt/a.tfrecord",))


def test_values_through_callers_of_a_tf2_function_in_a_tf1_graph() -> None:
    path = REAL_MODELS.parent / "real_models_2" / "tensorflow_tfx" / "tfma_eval_saved_model"
    if not path.is_dir():
        pytest.skip("../shared/real_models_2 not present")
    index = index_of(load_model(path))
    function = "__inference__initializer_94418"  # called from a function the graph calls with an asset path
    read = site_of(index, "text_file_init/InitializeTableFromTextFileV2", function)
    found = origins(index, read, read.node.inputs[1])
    assert found._replace(unfed=()) == Origins(assets=("vocab_compute_and_apply_vocabulary_vocabulary",))
    assert len(found.unfed) == 1  # the asset tensor's own (build machine) path, for when it is not fed
    # a function nothing calls never gets a file name
    uncalled = site_of(index, "text_file_init/InitializeTableFromTextFileV2", "__inference_<lambda>_94412")
    assert origins(index, uncalled, uncalled.node.inputs[1]) == Origins()


def test_fed_computed_and_cyclic_values_are_run_time() -> None:
    graph = GraphBuilder().add("fed", "Placeholder").add("a", "Identity", "b").add("b", "Identity", "a")
    graph.add("joined", "StringJoin", "fed").add("r1", "ReadFile", "fed").add("r2", "ReadFile", "a")
    index = index_of(graph.model())
    for name in ("r1", "r2"):
        site = site_of(index, name)
        assert origins(index, site, site.node.inputs[0]) == Origins(runtime=True)
    joined = site_of(index, "joined")
    assert extends_path(index, joined, "joined", {"fed"}) and not extends_path(index, joined, "a", {"fed"})


def test_a_saver_path_is_the_filename_or_a_shard_name_made_from_it() -> None:
    """Only what keeps the filename at the start of the path (no '..' after it) is the saver's path."""
    graph = GraphBuilder().add("fed", "Placeholder").add("suffix", "Const").add("up", "Const")
    graph.add("part", "StringJoin", "fed", "suffix").add("shard", "ShardedFilename", "part", "n", "i")
    graph.add("moved", "RegexReplace", "fed", "p", "r").add("before", "StringJoin", "up", "fed")
    graph.add("escape", "StringJoin", "fed", "up")
    model = graph.model()
    for name, text in (("suffix", b"_temp/part"), ("up", b"/../../elsewhere")):
        const = next(n for n in model.graph_def.node if n.name == name)
        const.attr["dtype"].type = 7
        const.attr["value"].tensor.dtype = 7
        const.attr["value"].tensor.string_val.append(text)
    index = index_of(model)
    site = site_of(index, "shard")
    assert extends_path(index, site, "shard", {"fed"}) and extends_path(index, site, "fed", {"fed"})
    for other in ("moved", "before", "escape", "suffix"):
        assert not extends_path(index, site, other, {"fed"}), other


def test_call_conventions() -> None:
    def node(op: str, *inputs: str, captured: int | None = None) -> Node:
        proto = NodeDef(name="call", op=op, input=list(inputs))
        if captured is not None:
            proto.attr["Targuments"].list.type.extend([7] * captured)
        else:
            proto.attr["f"].func.name = "fn"
        return Node.from_proto(proto)

    assert call_input(node("StatefulPartitionedCall", "a", "b"), "fn", 1, 2) == "b"
    assert call_input(node("If", "cond", "a", "b"), "fn", 0, 2) == "a"
    assert call_input(node("While", "a", "b"), "fn", 1, 2) == "b"
    # a tf.data function: element components first, then the captured inputs (the op's last inputs)
    mapped = node("MapDataset", "dataset", "c1", "c2", captured=2)
    assert call_input(mapped, "fn", 2, 3) == "c2" and call_input(mapped, "fn", 0, 3) is None
    assert call_input(node("fn", "a"), "fn", 0, 1) == "a"
    assert call_input(node("SomeOp", "a"), "fn", 0, 1) is None


# -- savers ----------------------------------------------------------------------------------------

def test_checkpoint_ops_are_a_savers_by_their_path() -> None:
    index = index_of(load_model(SECURITY / "fw_graph_decoy_save_1"))
    assert not saver_checkpoint_op(index, site_of(index, "save_1/SaveV2"))
    assert not unnamed_saver_op(index, site_of(index, "save_1/SaveV2"))  # a lone save with a path of its own
    own = [Site(n, GRAPH) for n in index.model.nodes() if n.op in ("SaveV2", "RestoreV2") and n.name.startswith("save/")]
    assert own and all(saver_checkpoint_op(index, site) for site in own)
    index = index_of(load_model(SECURITY / "benign_tf2_module"))
    traced = [s for s in index.inner_sites() if s.node.op in ("SaveV2", "RestoreV2", "MergeV2Checkpoints")]
    assert len(traced) == 3 and all(saver_checkpoint_op(index, s) for s in traced)


def test_savers_no_saverdef_names() -> None:
    path = REAL_MODELS / "Adiprogrammer7_intent_based_chatbot" / "chatbot_model.tflearn.meta"
    if not path.is_file():
        pytest.skip("../shared/real_models not present")
    index = index_of(load_model(path))
    for name in ("save_1/SaveV2", "save_3/RestoreV2"):  # TFLearn keeps a Saver per trainer
        assert unnamed_saver_op(index, site_of(index, name)) and not saver_checkpoint_op(index, site_of(index, name))


# -- nested GraphDefs ----------------------------------------------------------------------------

def _inner() -> GraphDef:
    inner = GraphDef()
    inner.node.add(name="leak", op="WriteFile").input.extend(["f", "c"])
    return inner


def test_graph_defs_in_any_field_order_and_base64() -> None:
    inner = _inner()
    inner.versions.producer = 1882
    inner.library.function.add().signature.name = "f"
    raw = inner.SerializeToString()
    library_first = GraphDef(library=inner.library).SerializeToString() + GraphDef(node=inner.node).SerializeToString()
    versions_first = GraphDef(versions=inner.versions).SerializeToString() + GraphDef(node=inner.node).SerializeToString()
    for blob, encoding in [(raw, "plain"), (library_first, "plain"), (versions_first, "plain"),
                           (base64.b64encode(raw), "base64"), (base64.urlsafe_b64encode(library_first), "base64")]:
        found = parse_graph_def(blob)
        assert found is not None and found[1] == encoding and [n.name for n in found[0].node] == ["leak"]


def test_every_element_of_a_string_tensor_is_looked_at(monkeypatch: pytest.MonkeyPatch) -> None:
    proto = NodeDef(name="vocab", op="Const")
    proto.attr["dtype"].type = 7
    words = [f"word{i}".encode() for i in range(100_000)]
    words[77_777] = base64.b64encode(_inner().SerializeToString())
    proto.attr["value"].tensor.dtype = 7
    proto.attr["value"].tensor.string_val.extend(words)
    parsed: list[bytes] = []
    real_parse = walk._parse
    monkeypatch.setattr(walk, "_parse", lambda blob: parsed.append(blob) or real_parse(blob))
    ((where, graph_def),) = list(nested_graph_defs(Node.from_proto(proto)))
    assert where == ("value", 77_777, "base64") and graph_def.node[0].name == "leak"
    assert len(parsed) == 1  # the vocabulary itself is never parsed: its first bytes rule it out


def test_nested_sites_carry_their_scope_and_nesting(tmp_path: Path) -> None:
    graph = GraphBuilder().add("x", "Placeholder")
    blob = graph.meta_graph.graph_def.node.add(name="blob", op="Const")
    blob.attr["dtype"].type = 7
    blob.attr["value"].tensor.dtype = 7
    outer = GraphDef()
    stash = outer.node.add(name="stash", op="Const")
    stash.attr["dtype"].type = 7
    stash.attr["value"].tensor.dtype = 7
    stash.attr["value"].tensor.string_val.append(_inner().SerializeToString())
    blob.attr["value"].tensor.string_val.extend([b"x", base64.b64encode(outer.SerializeToString())])
    index = index_of(graph.model())
    (leak,) = [s for s in index.inner_sites() if s.node.name == "leak"]
    assert leak.scope is not None and leak.scope.nesting is not None and leak.scope.nesting.depth == 2
    assert leak.outermost().node.name == "blob" and "leak" in index.scope(leak).nodes
    assert leak.where == "GraphDef in attr 'value' of stash (base64 of a GraphDef in attr 'value' element 1 of blob (graph))"


def test_a_saved_function_s_own_arguments_come_from_its_caller() -> None:
    """A TF2 saved method reading the file its caller names reads whatever a client asks for."""
    index = index_of(load_model(SECURITY / "fr_saved_method"))
    (method,) = [f for f in index.functions if f.startswith("__inference_evil")]
    scope = index.function_scope(method)
    read = Site(next(iter(scope.nodes.values())), f"function {method}", method)
    assert origins(index, read, scope.args[0]) == Origins(runtime=True)


def _library_model() -> tuple[GraphBuilder, Any]:
    """A graph whose library has: fwd (its registered gradient grad), cpu_impl and gpu_impl (one
    api_implements name), outer (calls a function passed in its attr) and payload."""
    graph = GraphBuilder().add("x", "Placeholder")
    library = graph.meta_graph.graph_def.library
    for name in ("fwd", "grad", "cpu_impl", "gpu_impl", "outer", "payload"):
        fn = library.function.add()
        fn.signature.name = name
        fn.node_def.add(name="n", op="NoOp")
    library.gradient.add(function_name="fwd", gradient_func="grad")
    for fn in library.function:
        if fn.signature.name in ("cpu_impl", "gpu_impl"):
            fn.attr["api_implements"].s = b"lstm_abc"
    return graph, library


def test_calls_through_gradients_implementations_and_function_attrs() -> None:
    """SymbolicGradient runs the registered gradient; Grappler may swap in any function implementing
    the same api; a function named in a function attr's own attrs is called too."""
    graph, _ = _library_model()
    graph.add("gradient", "SymbolicGradient", "x").add("call", "StatefulPartitionedCall", "x")
    graph.add("nested", "PartitionedCall", "x")
    model = graph.model()
    nodes = {n.name: n for n in model.graph_def.node}
    nodes["gradient"].attr["f"].func.name = "fwd"
    nodes["call"].attr["f"].func.name = "gpu_impl"
    nodes["nested"].attr["f"].func.name = "outer"
    nodes["nested"].attr["f"].func.attr["body"].func.name = "payload"
    index = index_of(model)
    assert index.called_functions(["gradient"]) == {"fwd", "grad"}
    assert index.called_functions(["call"]) == {"gpu_impl", "cpu_impl"}
    assert index.called_functions(["nested"]) == {"outer", "payload"}


def test_values_through_selections_and_defaults() -> None:
    """Gather/Select pick among their inputs' values; a PlaceholderWithDefault is its default unless served
    requests feed it (without a scan saying what is fed, it may be anything)."""
    graph = GraphBuilder().strings("paths", "gs://bkt/a", "/tmp/b").strings("other", "/tmp/c")
    graph.add("index", "Const").add("picked", "GatherV2", "paths", "index", "axis")
    graph.add("cond", "Placeholder").add("chosen", "SelectV2", "cond", "picked", "other")
    graph.add("defaulted", "PlaceholderWithDefault", "other").add("read", "ReadFile", "chosen")
    index = index_of(graph.model())
    read = site_of(index, "read")
    assert origins(index, read, "chosen") == Origins(constants=("/tmp/c", "gs://bkt/a", "/tmp/b"))
    assert origins(index, read, "defaulted") == Origins(constants=("/tmp/c",), runtime=True)
    index.memo["served_inputs"] = lambda: frozenset()
    assert origins(index, read, "defaulted") == Origins(constants=("/tmp/c",))
