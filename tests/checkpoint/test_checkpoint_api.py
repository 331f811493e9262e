"""The public checkpoint API: input forms, infos, verify, object graph, roles, TF-made goldens,
and the cost of opening a 20,000-variable index."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

from metainspect.checkpoint import CorruptTensor, TensorInfo, TensorLocation, open_checkpoint
from metainspect.checkpoint.object_graph import ObjectGraph
from metainspect.checkpoint.roles import classify
from metainspect.errors import CorruptError, NotFoundError, WrongKindError

from helpers.bundle import entry, header, string_bytes, write_bundle
from helpers.paths import SAMPLES
from helpers.table import TF_INDEX, build_table, masked_crc
from helpers.v1 import data_entry, meta_entry, write_v1


@pytest.fixture
def v2(tmp_path: Path) -> Path:
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    return write_bundle(tmp_path / "model.ckpt-1000", {
        "dense/kernel": (1, (2, 3), w.tobytes(), None),
        "dense/bias": (1, (3,), np.ones(3, np.float32).tobytes(), None),
        "global_step": (9, (), np.int64(1000).tobytes(), None),
    })


@pytest.fixture
def v1_sharded(tmp_path: Path) -> Path:
    for i in range(2):
        write_v1(tmp_path / f"m.ckpt-{i:05d}-of-00002", [meta_entry(f"v{i}", 1, (2,), [[(0, -1)]])],
                 [data_entry(f"v{i}", [(0, -1)], float_val=[i, i + 0.5])])
    return tmp_path


def test_v2_input_forms(v2: Path) -> None:
    for form in (v2, f"{v2}.index", f"{v2}.data-00000-of-00001", v2.parent):
        with open_checkpoint(form) as ckpt:
            assert ckpt.prefix == str(v2) and ckpt.format == "v2" and ckpt.index_file == f"{v2}.index"
            assert ckpt.keys() == ["dense/bias", "dense/kernel", "global_step"]
            assert ckpt.data_files == (f"{v2}.data-00000-of-00001",) and ckpt.num_shards == 1
            assert ckpt.endianness == "little" and ckpt.notes == ()


def test_v1_input_forms(v1_sharded: Path, tmp_path: Path) -> None:
    pattern = str(v1_sharded / "m.ckpt-?????-of-00002")
    for form in (pattern, v1_sharded / "m.ckpt-00001-of-00002", v1_sharded):
        with open_checkpoint(form) as ckpt:
            assert ckpt.format == "v1" and ckpt.prefix == pattern and ckpt.num_shards == 2
            assert ckpt.keys() == ["v0", "v1"] and ckpt.index_file is None
            np.testing.assert_array_equal(ckpt.get("v1"), [1, 1.5])
    (v1_sharded / "m.ckpt-00000-of-00002").unlink()
    with pytest.raises(NotFoundError, match=r"m.ckpt-00000-of-00002"):
        open_checkpoint(v1_sharded / "m.ckpt-00001-of-00002")
    single = write_v1(tmp_path / "single", [meta_entry("x", 1, (), [[]])], [data_entry("x", [], float_val=[2.0])])
    with open_checkpoint(single) as ckpt:
        assert ckpt.format == "v1" and ckpt.data_files == (single,) and float(ckpt.get("x")) == 2.0


def test_directory_forms(v2: Path, tmp_path: Path) -> None:
    saved_model = tmp_path / "export" / "1"
    (saved_model / "variables").mkdir(parents=True)
    (saved_model / "saved_model.pb").write_bytes(b"\x08\x01")
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(f"{v2}{suffix}", saved_model / "variables" / f"variables{suffix}")
    with open_checkpoint(saved_model) as ckpt:
        assert ckpt.prefix == str(saved_model / "variables" / "variables")
    write_bundle(tmp_path / "other", {})
    with pytest.raises(WrongKindError, match=r"holds 2 checkpoints.*model.ckpt-1000.*other"):
        open_checkpoint(tmp_path)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "C:\\\\runs\\\\other"\n')
    with open_checkpoint(tmp_path) as ckpt:
        assert ckpt.prefix == str(tmp_path / "other") and "another machine" in ckpt.notes[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(NotFoundError, match="no checkpoint in this directory"):
        open_checkpoint(empty)
    (empty / "saved_model.pb").write_bytes(b"\x08\x01")
    with open_checkpoint(empty) as ckpt:  # TensorFlow's loader restores nothing: no tensors, no error
        assert (len(ckpt), ckpt.infos(), ckpt.verify(), ckpt.object_graph()) == (0, [], [], None)
        assert ckpt.notes == (f"the SavedModel has no variables ({empty}/variables/variables.index does not exist): "
                              "it holds no tensors",)


def test_graphs_and_missing_paths(v2: Path, tmp_path: Path) -> None:
    Path(f"{v2}.meta").write_bytes(b"\x0a\x00")
    with pytest.raises(WrongKindError, match=r"graph.*load it with load_model"):
        open_checkpoint(f"{v2}.meta")
    Path(tmp_path / "only.meta").write_bytes(b"\x0a\x00")
    with pytest.raises(WrongKindError, match=r"only a graph.*load it with load_model"):
        open_checkpoint(tmp_path / "only")
    with pytest.raises(NotFoundError, match="no checkpoint here"):
        open_checkpoint(tmp_path / "nothing")
    (tmp_path / "junk").write_bytes(b"x" * 100)
    with pytest.raises(CorruptError, match="bad magic"):
        open_checkpoint(tmp_path / "junk")
    Path(tmp_path / "lonely.data-00000-of-00001").write_bytes(b"")
    with pytest.raises(NotFoundError, match=r"lonely.index"):
        open_checkpoint(tmp_path / "lonely.data-00000-of-00001")


def test_infos_get_and_key_errors(v2: Path) -> None:
    with open_checkpoint(v2) as ckpt:
        info = ckpt.info("dense/kernel")
        assert info == TensorInfo("dense/kernel", "float32", (2, 3), 24,
                                  (TensorLocation(f"{v2}.data-00000-of-00001", 0, 24, None),))
        assert ckpt.info("global_step").locations[0].offset == 36
        assert not info.partitioned and info.size == 6
        assert [i.name for i in ckpt.infos()] == ckpt.keys() and len(ckpt) == 3
        assert "global_step" in ckpt and "nope" not in ckpt and list(ckpt) == ckpt.keys()
        assert ckpt.dtype("global_step") == "int64" and ckpt.shape("global_step") == () and ckpt.nbytes("dense/bias") == 12
        value = ckpt.get("dense/kernel")
        assert not value.flags.writeable
        with pytest.raises(ValueError):
            value[0, 0] = 1
        with pytest.raises(KeyError, match="did you mean 'dense/kernel'"):
            ckpt.info("dense/kernal")
        with pytest.raises(KeyError, match="no tensor 'x'"):
            ckpt.get("x")
        assert ckpt.object_graph() is None


def test_partitioned_info(tmp_path: Path) -> None:
    prefix = tmp_path / "model.ckpt"
    Path(f"{prefix}.index").write_bytes(TF_INDEX)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(np.arange(40, dtype="<f4").tobytes())
    with open_checkpoint(prefix) as ckpt:
        info = ckpt.info("emb")
        assert info.partitioned and info.nbytes == 160 and info.shape == (10, 4)
        assert [(loc.offset, loc.size, loc.slice) for loc in info.locations] == [(0, 80, "0,5:0,4"), (80, 80, "5,5:0,4")]


def test_verify_reports_each_bad_tensor(v2: Path) -> None:
    data = Path(f"{v2}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[13] ^= 0xFF  # inside dense/kernel (offset 0, 24 bytes)
    data.write_bytes(bytes(raw))
    with open_checkpoint(v2) as ckpt:
        (finding,) = ckpt.verify()
        assert finding == CorruptTensor("dense/kernel", str(data), 0, finding.message)
        assert "checksum mismatch" in finding.message
        with pytest.raises(CorruptError):
            ckpt.get("dense/kernel")
    with open_checkpoint(v2, verify=False) as ckpt:
        assert ckpt.get("dense/kernel").shape == (2, 3)
    data.unlink()
    with open_checkpoint(v2) as ckpt:
        assert {f.name for f in ckpt.verify()} == {"dense/bias", "dense/kernel", "global_step"}


def _graph(*nodes: dict) -> bytes:
    proto = TrackableObjectGraph()
    for spec in nodes:
        node = proto.nodes.add()
        for name, child in spec.get("children", []):
            node.children.add(node_id=child, local_name=name)
        for key, full in spec.get("attrs", []):
            node.attributes.add(name="VARIABLE_VALUE", full_name=full, checkpoint_key=key)
        for original, slot, slot_node in spec.get("slots", []):
            node.slot_variables.add(original_variable_node_id=original, slot_name=slot, slot_variable_node_id=slot_node)
    return proto.SerializeToString()


KERAS3_GRAPH = _graph(
    {"children": [("model", 1), ("optimizer", 2), ("save_counter", 3)]},
    {"children": [("_operations", 4)]},
    {"children": [("_trainable_variables", 5), ("_variables", 6), ("iterations", 7)]},
    {"attrs": [("save_counter/.ATTRIBUTES/VARIABLE_VALUE", "save_counter")]},
    {"children": [("layer.0", 10)]},
    {"children": [("0", 8)]},
    {"children": [("0", 9)]},
    {"attrs": [("optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE", "iteration")]},
    {"attrs": [("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE", "dense/kernel")]},
    {"attrs": [("optimizer/_variables/0/.ATTRIBUTES/VARIABLE_VALUE", "adam/m")]},
    {"children": [("kernel", 8)]},
)


def test_object_graph_paths_and_roles_keras3_style(tmp_path: Path) -> None:
    raw, crc = string_bytes([KERAS3_GRAPH])
    tensors = {"_CHECKPOINTABLE_OBJECT_GRAPH": (7, (), raw, crc)}
    for key in ("save_counter", "optimizer/iterations", "optimizer/_trainable_variables/0", "optimizer/_variables/0"):
        tensors[f"{key}/.ATTRIBUTES/VARIABLE_VALUE"] = (1, (), np.float32(1).tobytes(), None)
    with open_checkpoint(write_bundle(tmp_path / "ckpt-1", tensors)) as ckpt:
        graph = ckpt.object_graph()
        assert graph is not None and graph is ckpt.object_graph()
        assert graph.nodes[10].path == "model/_operations/layer..0"
        assert graph.nodes[8].path == "optimizer/_trainable_variables/0"  # BFS: the shorter path wins
        assert graph.node_at("model/_operations/layer..0/kernel") is None
        roles = {key: classify(key, graph) for key in ckpt}
    assert roles == {
        "_CHECKPOINTABLE_OBJECT_GRAPH": "bookkeeping",
        "optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE": "model",
        "optimizer/_variables/0/.ATTRIBUTES/VARIABLE_VALUE": "optimizer",
        "optimizer/iterations/.ATTRIBUTES/VARIABLE_VALUE": "optimizer",
        "save_counter/.ATTRIBUTES/VARIABLE_VALUE": "bookkeeping",
    }


def test_object_graph_slots_and_bad_references() -> None:
    graph = ObjectGraph.from_bytes(_graph(
        {"children": [("net", 1), ("opt", 2)]},
        {"children": [("w/x", 3)]},
        {"slots": [(3, "m", 4)]},
        {"attrs": [("net/w.Sx/.ATTRIBUTES/VARIABLE_VALUE", "w")]},
        {"attrs": [("net/w.Sx/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE", "w/m")]},
    ))
    (slot,) = graph.nodes[2].slot_variables
    assert (slot.original_path, slot.slot_name, slot.slot_node) == ("net/w.Sx", "m", 4)
    assert slot.checkpoint_key == "net/w.Sx/.OPTIMIZER_SLOT/opt/m/.ATTRIBUTES/VARIABLE_VALUE"
    assert graph.path_for_key(slot.checkpoint_key) == "net/w.Sx/.OPTIMIZER_SLOT/opt/m"
    assert classify(slot.checkpoint_key, graph) == "optimizer"
    assert classify("net/w.Sx/.ATTRIBUTES/VARIABLE_VALUE", graph) == "model"
    with pytest.raises(CorruptError, match="refers to node 7"):
        ObjectGraph.from_bytes(_graph({"children": [("x", 7)]}))
    with pytest.raises(CorruptError, match="not a TrackableObjectGraph"):
        ObjectGraph.from_bytes(b"\xff\xff\xff")


@pytest.mark.parametrize(("key", "role"), [
    ("dense/kernel", "model"), ("dense/kernel/Adam", "optimizer"), ("dense/kernel/Adam_1", "optimizer"),
    ("w/Momentum", "optimizer"), ("w/RMSProp_1", "optimizer"), ("w/ExponentialMovingAverage", "optimizer"),
    ("beta1_power", "optimizer"), ("Adam/beta2_power_1", "optimizer"), ("global_step", "bookkeeping"),
    ("Global_Step", "bookkeeping"), ("save_counter/.ATTRIBUTES/VARIABLE_VALUE", "bookkeeping"),
    ("model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE", "optimizer"),
    ("optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", "optimizer"), ("optimizer/learning_rate/.ATTRIBUTES/VARIABLE_VALUE", "optimizer"),
    ("optimizer/_variables/3/.ATTRIBUTES/VARIABLE_VALUE", "optimizer"),
    ("optimizer/_trainable_variables/0/.ATTRIBUTES/VARIABLE_VALUE", "model"),
    ("model/layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE", "model"),
])
def test_roles_by_name(key: str, role: str) -> None:
    assert classify(key) == role


def test_open_20000_variable_index_is_fast_and_small(tmp_path: Path) -> None:
    items = [(b"", header())]
    for i in range(20000):
        name = f"model/block_{i // 100:03d}/layer_{i % 100:02d}/kernel".encode()
        items.append((name, entry(1, (1024, 1024), offset=i * 4 << 20, size=4 << 20, crc32c=masked_crc(name))))
    Path(tmp_path / "huge.index").write_bytes(build_table(sorted(items), per_block=3000))
    start = time.perf_counter()
    ckpt = open_checkpoint(tmp_path / "huge")
    opened = time.perf_counter() - start
    infos = ckpt.infos()
    listed = time.perf_counter() - start
    assert len(infos) == 20000 and infos[0].nbytes == 4 << 20
    assert ckpt.info("model/block_199/layer_99/kernel").locations[0].offset == 19999 * 4 << 20
    # measured ~0.05 s to open and ~0.2 s to list on a busy 2-CPU box; bounds are generous for CI
    assert opened < 0.5, f"opening took {opened:.3f}s"
    assert listed < 2.0, f"opening and listing took {listed:.3f}s"
    ckpt.close()
    tracemalloc.start()
    with open_checkpoint(tmp_path / "huge") as ckpt:
        ckpt.infos()
        peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 << 20, f"peak Python allocations {peak >> 20} MiB"


# ----------------------------------------------------------------------------------------------
# goldens written by TensorFlow (sample_meta/ckpt_*/golden.json)
# ----------------------------------------------------------------------------------------------


def tensor_sha256(value: np.ndarray) -> str:
    """Same digest as sample_meta/generate.py: raw C-order bytes; strings as u64 length + bytes."""
    h = hashlib.sha256()
    if value.dtype == object:
        for item in value.ravel(order="C"):
            h.update(len(item).to_bytes(8, "little") + item)
    else:
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def _goldens() -> list[tuple[Path, str, dict]]:
    found = []
    for path in sorted(SAMPLES.glob("ckpt_*/golden.json")):
        data = json.loads(path.read_text())
        for name, golden in (data["checkpoints"] if "checkpoints" in data else {data["prefix"]: data}).items():
            found.append((path.parent, name, golden))
    return found


GOLDENS = _goldens()


@pytest.mark.skipif(not GOLDENS, reason="no sample_meta/ckpt_* goldens")
@pytest.mark.parametrize(("directory", "name", "golden"), GOLDENS, ids=[f"{d.name}/{n}" for d, n, _ in GOLDENS])
def test_tensorflow_golden(directory: Path, name: str, golden: dict) -> None:
    with open_checkpoint(directory / golden["prefix"]) as ckpt:
        assert [[key, list(ckpt.shape(key))] for key in ckpt.keys()] == golden["variables"]
        assert {key: ckpt.dtype(key) for key in ckpt} == golden["dtypes"]
        for key, digest in golden["sha256"].items():
            assert tensor_sha256(ckpt.get(key)) == digest, key
        for key in golden.get("unreadable_by_tf", []):  # e.g. variants and sliced V1 tensors
            assert ckpt.get(key).shape == tuple(ckpt.shape(key))
        if "num_shards" in golden:
            assert ckpt.num_shards == golden["num_shards"]
        assert ckpt.verify() == []
        if "object_graph" in golden:
            graph = ckpt.object_graph()
            assert graph is not None
            assert [[[c[0], c[1]] for c in n.children] for n in graph.nodes] == [n["children"] for n in golden["object_graph"]]
            assert [[[a.name, a.checkpoint_key] for a in n.attributes] for n in graph.nodes] == [
                n["attributes"] for n in golden["object_graph"]]


@pytest.mark.skipif(not GOLDENS, reason="no sample_meta/ckpt_* goldens")
def test_tensorflow_latest_checkpoint_goldens() -> None:
    for path in sorted(SAMPLES.glob("ckpt_*/golden.json")):
        latest = json.loads(path.read_text()).get("latest")
        if latest:
            with open_checkpoint(path.parent) as ckpt:
                assert Path(ckpt.prefix).name == latest and ckpt.notes == ()
