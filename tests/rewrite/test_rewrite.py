"""Checkpoint rewrite: byte-identical copies of TF's files, drops, renames, casts, shards, the TF2
object graph, refusals before writing, in-place backups, corrupt inputs, and the CLI."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from tensorboard.compat.proto.trackable_object_graph_pb2 import TrackableObjectGraph

from metainspect.checkpoint import open_checkpoint
from metainspect.checkpoint.object_graph import OBJECT_GRAPH_KEY
from metainspect.cli.options import parse_cast, parse_size
from metainspect.errors import CorruptError, MetainspectError, NotFoundError
from metainspect.formats.bundle import Bundle
from metainspect.formats.slices import encode_slice_key
from metainspect.rewrite import (
    Dropped,
    RewriteOptions,
    cast_types,
    plan_rewrite,
    rewrite_checkpoint,
    rewrite_object_graph,
)
from metainspect.rewrite.plan import _has_checkpoint_values

from helpers.bundle import string_bytes, write_big_endian_dtypes, write_bundle
from helpers.cli import Cli
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp" / "model.ckpt-3"
SLOTS = SAMPLES / "ckpt_tf2_slots" / "ckpt-1"
KERAS = SAMPLES / "ckpt_tf2" / "ckpt-2"
PARTITIONED = SAMPLES / "ckpt_partitioned" / "model.ckpt"
DTYPES_GOLDEN = json.loads((SAMPLES / "ckpt_dtypes" / "golden.json").read_text())


def _tf_bundles() -> list[str]:
    return sorted({p[: -len(".index")] for p in glob.glob(str(SAMPLES / "**" / "*.index"), recursive=True)})


def _data_files(prefix: str | Path) -> list[str]:
    return sorted(glob.glob(glob.escape(str(prefix)) + ".data-*"))


def _values(prefix: str | Path) -> dict[str, np.ndarray]:
    with open_checkpoint(prefix) as ckpt:
        return {name: ckpt.get(name) for name in ckpt.keys() if ckpt.dtype(name) != "variant"}


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype == object:
        return a.shape == b.shape and a.tolist() == b.tolist()
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def _copy(prefix: Path, directory: Path) -> Path:
    for path in glob.glob(glob.escape(str(prefix)) + "*"):
        shutil.copy(path, directory)
    return directory / prefix.name


# -- faithful copies ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", _tf_bundles(), ids=lambda p: os.path.relpath(p, SAMPLES))
def test_no_op_rewrite_reproduces_tensorflows_files(prefix: str, tmp_path: Path) -> None:
    plan = rewrite_checkpoint(prefix, str(tmp_path / "out"))
    written = plan.written
    assert written is not None
    assert Path(written.index_file).read_bytes() == Path(prefix + ".index").read_bytes()
    originals = _data_files(prefix)
    assert len(written.data_files) == len(originals) == plan.output_shards == plan.source_shards
    for ours, theirs in zip(written.data_files, originals):
        assert Path(ours).read_bytes() == Path(theirs).read_bytes()
    assert not plan.dropped and not plan.renamed and not plan.cast and plan.output_bytes == plan.input_bytes


def test_v1_checkpoints_become_v2_with_the_same_values(tmp_path: Path) -> None:
    for sample, shards in (("ckpt_v1", 1), ("ckpt_v1_sharded", 3)):
        plan = rewrite_checkpoint(str(SAMPLES / sample), str(tmp_path / sample))
        assert plan.source_format == "v1" and plan.written and plan.written.num_shards == shards
        source, copy = _values(SAMPLES / sample), _values(tmp_path / sample)
        assert source.keys() == copy.keys()
        assert all(_same(source[k], copy[k]) for k in source)
        with open_checkpoint(tmp_path / sample) as ckpt:
            assert ckpt.format == "v2" and ckpt.info("emb").partitioned and ckpt.verify() == []
            assert not ckpt.info("weights").partitioned


def test_big_endian_input_gives_little_endian_output_with_tensorflows_values(tmp_path: Path) -> None:
    prefix = write_big_endian_dtypes(tmp_path / "big")
    rewrite_checkpoint(str(prefix), str(tmp_path / "little"))
    with open_checkpoint(tmp_path / "little") as ckpt:
        assert ckpt.endianness == "little" and ckpt.verify() == []
        for name in ckpt.keys():
            value = ckpt.get(name)
            if value.dtype == object:
                digest = hashlib.sha256(b"".join(len(s).to_bytes(8, "little") + s for s in value.reshape(-1)))
            else:
                digest = hashlib.sha256(np.ascontiguousarray(value).tobytes())
            assert digest.hexdigest() == DTYPES_GOLDEN["sha256"][name], name


def test_real_checkpoints_copy_faithfully(real_models: Path, tmp_path: Path) -> None:
    sources = sorted({str(p)[: -len(".index")] for p in real_models.rglob("*.index")})
    sources += [str(real_models / p) for p in ("255BITS_vocal-autoencoder/model.ckpt", "Gknoblau_nxt-tensorflow/model.ckpt",
                                                "tensorflow_serving/session_bundle/half_plus_two/00000123/export-00000-of-00001")]
    for i, source in enumerate(sources):
        plan = rewrite_checkpoint(source, str(tmp_path / f"c{i}"))
        before, after = _values(plan.source), _values(tmp_path / f"c{i}")
        assert before.keys() == after.keys() and all(_same(before[k], after[k]) for k in before), source
        index = Path(source + ".index")
        if index.exists() and b"\x01" not in _trailer_types(index):  # uncompressed: identical files
            assert (tmp_path / f"c{i}.index").read_bytes() == index.read_bytes(), source
    assert len(sources) >= 15


def _trailer_types(index: Path) -> bytes:
    from metainspect.formats.table import Table

    data = index.read_bytes()
    return bytes(data[h.offset + h.size] for h in Table(data, str(index)).blocks)


# -- dropping -------------------------------------------------------------------------------------


def test_drop_optimizer_on_a_tf1_checkpoint(tmp_path: Path) -> None:
    plan = rewrite_checkpoint(str(MLP), str(tmp_path / "slim"), RewriteOptions(drop_optimizer=True))
    assert sorted(t.name for t in plan.kept) == ["dense1/bias", "dense1/kernel", "dense2/bias", "dense2/kernel", "global_step"]
    assert {t.drop_reason for t in plan.dropped} == {Dropped("drop_optimizer")} and len(plan.dropped) == 10
    assert plan.input_bytes - plan.output_bytes == sum(t.nbytes for t in plan.dropped) == 544
    assert os.path.getsize(tmp_path / "slim.data-00000-of-00001") == 820 - 544
    source, slim = _values(MLP), _values(tmp_path / "slim")
    assert all(_same(source[k], slim[k]) for k in slim)


def test_drop_optimizer_on_a_tf2_checkpoint_rewrites_the_object_graph(tmp_path: Path) -> None:
    plan = rewrite_checkpoint(str(SLOTS), str(tmp_path / "slim"), RewriteOptions(drop_optimizer=True))
    assert plan.object_graph is not None
    assert (plan.object_graph.attributes_removed, plan.object_graph.slot_variables_removed) == (6, 4)
    with open_checkpoint(tmp_path / "slim") as ckpt:
        graph = ckpt.object_graph()
        keys = set(ckpt.keys())
        assert keys == {OBJECT_GRAPH_KEY, "model/w/.ATTRIBUTES/VARIABLE_VALUE", "model/b/.ATTRIBUTES/VARIABLE_VALUE",
                        "save_counter/.ATTRIBUTES/VARIABLE_VALUE"}
        assert set(graph.key_paths()) == keys - {OBJECT_GRAPH_KEY}
        optimizer = graph.node_at("optimizer")
        assert optimizer is not None and optimizer.slot_variables == () and optimizer.has_checkpoint_values is False
        assert graph.node_at("model").has_checkpoint_values is True
        assert len(graph.nodes) == 12  # node ids are kept (a SavedModel refers to them)


def test_keras3_model_weights_under_the_optimizer_are_kept(tmp_path: Path) -> None:
    plan = rewrite_checkpoint(str(KERAS), str(tmp_path / "slim"), RewriteOptions(drop_optimizer=True))
    kept = {t.name for t in plan.kept}
    assert {f"optimizer/_trainable_variables/{i}/.ATTRIBUTES/VARIABLE_VALUE" for i in range(4)} <= kept
    assert not any("optimizer/_variables/" in k or "_iterations" in k for k in kept)
    assert "save_counter/.ATTRIBUTES/VARIABLE_VALUE" in kept


def test_drop_and_keep_patterns(tmp_path: Path) -> None:
    options = RewriteOptions(keep=("^dense1/", "global_step"), drop=("Adam_1$",))
    plan = rewrite_checkpoint(str(MLP), str(tmp_path / "k"), options)
    assert sorted(t.name for t in plan.kept) == ["dense1/bias", "dense1/bias/Adam", "dense1/kernel",
                                                  "dense1/kernel/Adam", "global_step"]
    reasons = {t.name: t.drop_reason for t in plan.dropped}
    assert reasons["dense1/bias/Adam_1"] == Dropped("drop", "Adam_1$") and reasons["dense2/bias"] == Dropped("keep")


# -- renaming -------------------------------------------------------------------------------------


def test_scope_and_regex_renames(tmp_path: Path) -> None:
    options = RewriteOptions(renames=("dense1=encoder/layer1", r"re:^dense2/(\w+)$=head/\1"), drop_optimizer=True)
    plan = rewrite_checkpoint(str(MLP), str(tmp_path / "r"), options)
    assert {t.name: t.new_name for t in plan.renamed} == {
        "dense1/bias": "encoder/layer1/bias", "dense1/kernel": "encoder/layer1/kernel",
        "dense2/bias": "head/bias", "dense2/kernel": "head/kernel"}
    source, renamed = _values(MLP), _values(tmp_path / "r")
    assert sorted(renamed) == ["encoder/layer1/bias", "encoder/layer1/kernel", "global_step", "head/bias", "head/kernel"]
    assert _same(renamed["head/kernel"], source["dense2/kernel"])


def test_partitioned_slices_are_rekeyed_through_their_tensor_name(tmp_path: Path) -> None:
    rewrite_checkpoint(str(PARTITIONED), str(tmp_path / "p"), RewriteOptions(renames=("rows=emb/rows",)))
    bundle = Bundle(str(tmp_path / "p"))
    assert "emb/rows" in bundle.names() and "rows" not in bundle.names()
    extents = [[(0, 3), (0, 4)], [(3, 2), (0, 4)], [(5, 2), (0, 4)]]
    assert all(encode_slice_key("emb/rows", e) in bundle._raw for e in extents)
    assert not any(key.startswith(b"\x00rows\x00") for key in bundle._raw)
    np.testing.assert_array_equal(bundle.read("emb/rows"), _values(PARTITIONED)["rows"])


def test_v1_names_and_slices_are_renamed(tmp_path: Path) -> None:
    rewrite_checkpoint(str(SAMPLES / "ckpt_v1"), str(tmp_path / "v"), RewriteOptions(renames=("re:^(.*)$=v1/\\1",)))
    with open_checkpoint(tmp_path / "v") as ckpt:
        assert ckpt.keys() == ["v1/counts", "v1/emb", "v1/step", "v1/weights", "v1/words"]
        assert ckpt.info("v1/emb").partitioned
        np.testing.assert_array_equal(ckpt.get("v1/emb"), _values(SAMPLES / "ckpt_v1")["emb"])


def test_renames_reach_checkpoint_keys_and_full_names_of_the_object_graph(tmp_path: Path) -> None:
    plan = rewrite_checkpoint(str(SLOTS), str(tmp_path / "r"), RewriteOptions(renames=("model=net",)))
    assert plan.object_graph is not None and plan.object_graph.keys_renamed == 6
    with open_checkpoint(tmp_path / "r") as ckpt:
        graph = ckpt.object_graph()
        assert set(graph.key_paths()) == set(ckpt.keys()) - {OBJECT_GRAPH_KEY}
        assert "net/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE" in ckpt.keys()
        assert graph.node_at("model/w").attributes[0].checkpoint_key == "net/w/.ATTRIBUTES/VARIABLE_VALUE"
    data = _values(SLOTS)[OBJECT_GRAPH_KEY][()]
    renamed, change = rewrite_object_graph(data, {}, set(), lambda name: "x/" + name)
    proto = TrackableObjectGraph.FromString(renamed)
    assert change.full_names_renamed == 9 and all(a.full_name.startswith("x/") for n in proto.nodes for a in n.attributes)


def test_object_graph_is_untouched_when_nothing_in_it_changes() -> None:
    data = _values(KERAS)[OBJECT_GRAPH_KEY][()]
    same, change = rewrite_object_graph(data, {}, {"not/a/key"}, lambda name: name)
    assert same is data and not change.changed


@pytest.mark.parametrize("prefix", [SLOTS, KERAS, SAMPLES / "savedmodel_tf2" / "variables" / "variables"])
def test_has_checkpoint_values_follows_tensorflows_rule(prefix: Path) -> None:
    proto = TrackableObjectGraph.FromString(_values(prefix)[OBJECT_GRAPH_KEY][()])
    assert _has_checkpoint_values(proto) == [node.has_checkpoint_values.value for node in proto.nodes]


# -- casting and sharding ----------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["float16", "bfloat16"])
def test_cast_float32_tensors(target: str, tmp_path: Path) -> None:
    plan = rewrite_checkpoint(str(PARTITIONED), str(tmp_path / "c"), RewriteOptions(cast=("float32", target)))
    assert {t.name for t in plan.cast} == {"rows", "cols", "plain"}
    numpy_type = np.float16 if target == "float16" else ml_dtypes.bfloat16
    source = _values(PARTITIONED)
    with open_checkpoint(tmp_path / "c") as ckpt:
        assert ckpt.dtype("rows") == target and ckpt.dtype("axis_sized") == "float64" and ckpt.info("cols").partitioned
        for name in ("rows", "cols", "plain"):
            assert _same(ckpt.get(name), source[name].astype(numpy_type))
        assert ckpt.verify() == []
    assert plan.output_bytes == plan.input_bytes - sum(t.nbytes // 2 for t in plan.cast)


def test_cast_counts_values_that_overflow(tmp_path: Path) -> None:
    prefix = write_bundle(tmp_path / "f", {"w": (1, (3,), np.array([1.0, 7e4, -np.inf], np.float32).tobytes(), None)})
    plan = rewrite_checkpoint(str(prefix), str(tmp_path / "h"), RewriteOptions(cast=("float32", "float16")))
    assert plan.warnings == ("w: 1 finite value(s) out of float16's range became inf or nan",)


def test_shard_size_splits_the_output(tmp_path: Path) -> None:
    options = RewriteOptions(shard_size=300)
    plan = plan_rewrite(str(MLP), options)
    written = rewrite_checkpoint(str(MLP), str(tmp_path / "s"), options).written
    assert written is not None and written.num_shards == plan.output_shards > 2
    assert all(os.path.getsize(f) <= 300 for f in written.data_files)
    source, split = _values(MLP), _values(tmp_path / "s")
    assert all(_same(source[k], split[k]) for k in source)


def test_dropping_a_whole_shard_renumbers_the_rest(tmp_path: Path) -> None:
    plan = rewrite_checkpoint(str(SAMPLES / "ckpt_tf1_sharded"), str(tmp_path / "s"), RewriteOptions(drop=("_1$",)))
    assert plan.output_shards == 2 and plan.written and plan.written.num_shards == 2
    with open_checkpoint(tmp_path / "s") as ckpt:
        assert ckpt.keys() == ["ref_0", "ref_2", "res_0", "res_2"] and ckpt.verify() == []


# -- refusals, safety, corruption ----------------------------------------------------------------


@pytest.mark.parametrize(("options", "message"), [
    (RewriteOptions(renames=("dense1=dense2",)), "would both become 'dense2/"),
    (RewriteOptions(renames=("decoder=x",)), "'decoder=x' matches no tensor"),
    (RewriteOptions(renames=("re:Adam_1$=m",), drop_optimizer=True), "matches only dropped tensors"),
    (RewriteOptions(drop=("nothing",)), "^drop 'nothing' matches no tensor"),
    (RewriteOptions(keep=("nothing",)), "^keep 'nothing' matches no tensor"),
    (RewriteOptions(drop=("[",)), "bad regular expression"),
    (RewriteOptions(drop=(".",)), "every tensor would be dropped"),
    (RewriteOptions(cast=("int64", "float16")), "int64 is not a floating-point type"),
    (RewriteOptions(cast=("float32", "int8")), "int8 is not a floating-point type"),
    (RewriteOptions(cast=("float64", "float16")), "^cast float64->float16: no float64 tensor to cast"),
    (RewriteOptions(cast=("float32", "float32")), "the same"),
    (RewriteOptions(cast=("float32",)), "expected \\(source, target\\)"),  # type: ignore[arg-type]
    (RewriteOptions(renames=("re:^global_step$=_CHECKPOINTABLE_OBJECT_GRAPH",)), "object graph"),
])
def test_refusals_happen_before_anything_is_written(options: RewriteOptions, message: str, tmp_path: Path) -> None:
    with pytest.raises(MetainspectError, match=message):
        rewrite_checkpoint(str(MLP), str(tmp_path / "out"), options)
    assert os.listdir(tmp_path) == []


def test_drop_optimizer_without_optimizer_state_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MetainspectError, match="no optimizer state"):
        plan_rewrite(str(SAMPLES / "ckpt_v1"), RewriteOptions(drop_optimizer=True))


def test_never_writes_over_an_input_or_an_existing_output(tmp_path: Path) -> None:
    with pytest.raises(MetainspectError, match="is the input checkpoint"):
        rewrite_checkpoint(str(MLP), str(MLP))
    with pytest.raises(MetainspectError, match="is a directory"):
        rewrite_checkpoint(str(MLP), str(tmp_path))
    (tmp_path / "out.data-00000-of-00002").write_bytes(b"old")
    with pytest.raises(MetainspectError, match="already exists"):
        rewrite_checkpoint(str(MLP), str(tmp_path / "out"))
    assert sorted(os.listdir(tmp_path)) == ["out.data-00000-of-00002"]
    with pytest.raises(MetainspectError, match="do not name another output"):
        rewrite_checkpoint(str(MLP), str(tmp_path / "other"), in_place=True)


def test_a_corrupt_tensor_stops_the_rewrite_and_leaves_nothing(tmp_path: Path) -> None:
    source = _copy(MLP, tmp_path)
    data = Path(f"{source}.data-00000-of-00001")
    raw = bytearray(data.read_bytes())
    raw[110] ^= 0x01  # inside dense1/kernel (offset 104)
    data.write_bytes(bytes(raw))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CorruptError, match=r"'dense1/kernel'.*checksum mismatch at offset 104"):
        rewrite_checkpoint(str(source), str(out / "x"))
    assert os.listdir(out) == []
    plan = rewrite_checkpoint(str(source), str(out / "x"), RewriteOptions(verify=False))
    assert not plan.verify
    with open_checkpoint(out / "x") as copy:  # copied as stored: TF's CRC still flags it
        assert [c.name for c in copy.verify()] == ["dense1/kernel"]


def test_a_corrupt_tensor_in_a_later_shard_stops_the_rewrite_and_leaves_nothing(tmp_path: Path) -> None:
    source = _copy(SAMPLES / "ckpt_tf1_sharded" / "model.ckpt", tmp_path)
    entry = Bundle(str(source)).entry("ref_2")
    data = Path(f"{source}.data-{entry.shard_id:05d}-of-00003")
    raw = bytearray(data.read_bytes())
    raw[entry.offset] ^= 0x01
    data.write_bytes(bytes(raw))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(CorruptError, match=rf"'ref_2'.*checksum mismatch at offset {entry.offset}"):
        rewrite_checkpoint(str(source), str(out / "x"))
    assert os.listdir(out) == []


@pytest.mark.parametrize(("damage", "message"), [
    (lambda raw: raw[:1] + bytes([raw[1] ^ 1]) + raw[2:], "string length checksum does not match"),
    (lambda raw: raw[:-1] + b"!", "checksum mismatch at offset 0"),
])
def test_corrupt_strings_are_caught_without_decoding(damage: Callable[[bytes], bytes], message: str, tmp_path: Path) -> None:
    values = [b"ab", b"", b"x" * 300] + [b"w%d" % i for i in range(200)]
    raw, checksum = string_bytes(values)
    good = write_bundle(tmp_path / "good", {"s": (7, (203,), raw, checksum)})
    rewrite_checkpoint(str(good), str(tmp_path / "copy"))
    assert _values(tmp_path / "copy")["s"].tolist() == values
    bad = write_bundle(tmp_path / "bad", {"s": (7, (203,), damage(raw), checksum)})
    with pytest.raises(CorruptError, match=message):
        rewrite_checkpoint(str(bad), str(tmp_path / "out"))
    assert not glob.glob(str(tmp_path / "out*"))


def test_missing_or_truncated_data_is_refused_before_writing(tmp_path: Path) -> None:
    source = _copy(MLP, tmp_path)
    data = Path(f"{source}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:700])
    out = tmp_path / "out"
    with pytest.raises(CorruptError, match=r"'dense2/kernel/Adam': bytes 620\.\.716 extend beyond the file \(700 bytes\)"):
        rewrite_checkpoint(str(source), str(out / "x"), RewriteOptions(verify=False))
    plan = rewrite_checkpoint(str(source), str(out / "slim"), RewriteOptions(drop="^dense2/kernel/Adam|global_step"))
    assert plan.written is not None  # what is dropped need not be readable
    data.unlink()
    with pytest.raises(NotFoundError, match="data shard 0 of 1 is missing"):
        rewrite_checkpoint(str(source), str(out / "y"))
    assert sorted(os.listdir(out)) == ["slim.data-00000-of-00001", "slim.index"]


def test_in_place_keeps_a_backup_prefix(tmp_path: Path) -> None:
    source = _copy(MLP, tmp_path)
    original = {Path(p).name: Path(p).read_bytes() for p in glob.glob(f"{source}.*") if not p.endswith(".meta")}
    plan = rewrite_checkpoint(str(source), None, RewriteOptions(drop_optimizer=True), in_place=True)
    assert plan.in_place and plan.backup == f"{source}.bak" and plan.output == str(source)
    backup = _values(f"{source}.bak")
    assert len(backup) == 15 and sorted(_values(source)) == sorted(t.name for t in plan.kept)
    assert {n.replace(".bak", ""): Path(tmp_path / n).read_bytes() for n in os.listdir(tmp_path) if ".bak." in n} == original
    with pytest.raises(MetainspectError, match="backup of an earlier in_place rewrite"):
        rewrite_checkpoint(str(source), None, RewriteOptions(cast=("float32", "float16")), in_place=True)


def test_in_place_on_a_v1_file(tmp_path: Path) -> None:
    shutil.copy(SAMPLES / "ckpt_v1" / "model.ckpt", tmp_path / "model.ckpt")
    rewrite_checkpoint(str(tmp_path / "model.ckpt"), None, in_place=True)
    assert sorted(os.listdir(tmp_path)) == ["model.ckpt.bak", "model.ckpt.data-00000-of-00001", "model.ckpt.index"]
    with open_checkpoint(tmp_path / "model.ckpt") as ckpt:
        assert ckpt.format == "v2" and len(ckpt) == 5
    with pytest.raises(MetainspectError, match="sharded V1"):
        plan_rewrite(str(SAMPLES / "ckpt_v1_sharded"), in_place=True)


def test_plan_matches_what_is_written_and_reports_progress(tmp_path: Path) -> None:
    options = RewriteOptions(drop_optimizer=True, cast=("float32", "bfloat16"), renames=("model=net",))
    planned = plan_rewrite(str(SLOTS), options, out_prefix=str(tmp_path / "o"))
    assert os.listdir(tmp_path) == [] and planned.written is None
    calls: list[tuple[int, int]] = []
    done = rewrite_checkpoint(str(SLOTS), str(tmp_path / "o"), options,
                              progress=lambda step, d, t: calls.append((d, t)))
    assert done.tensors == planned.tensors and done.written is not None
    assert done.written.data_bytes == planned.output_bytes == calls[-1][0] == calls[-1][1]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_parse_size_and_cast() -> None:
    assert [parse_size(s) for s in ("4096", "512M", "1G", "1.5GiB", "64k", "2 MB")] == \
        [4096, 512 << 20, 1 << 30, 3 << 29, 64 << 10, 2 << 20]
    for bad in ("", "12X", "-5", "0"):
        with pytest.raises(MetainspectError, match="shard-size"):
            parse_size(bad)
    assert [d.name for d in cast_types(parse_cast("float:half"))] == ["float32", "float16"]
    with pytest.raises(MetainspectError, match="--cast 'float32': expected SRC:DST"):
        parse_cast("float32")


# -- command line -----------------------------------------------------------------------------------


def test_cli_plan_prints_every_change_and_writes_nothing(tmp_path: Path, cli: Cli) -> None:
    result = cli("rewrite", str(MLP), "-o", str(tmp_path / "o"), "--drop-optimizer", "--rename", "dense1=layer1", "--plan")
    assert result.code == 0, result.stderr
    assert os.listdir(tmp_path) == []
    out = result.stdout
    assert "drop    beta1_power" in out and "(--drop-optimizer)" in out
    assert any(line.startswith("rename  dense1/kernel") and "layer1/kernel" in line for line in out.splitlines())
    assert "15 tensors, 820 B" in out and "5 tensors, 276 B" in out and "10 dropped (544 B)" in out
    assert "plan only: nothing written" in out


def test_cli_json_and_written_files(tmp_path: Path, cli: Cli) -> None:
    result = cli("rewrite", str(SLOTS), "-o", str(tmp_path / "o"), "--drop-optimizer", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["summary"]["dropped"] == 6 and data["summary"]["output_shards"] == 1
    assert data["object_graph"]["slot_variables_removed"] == 4
    assert data["written"]["index_file"] == f"{tmp_path}/o.index" and data["written"]["bytes"] > 0
    dropped = [t for t in data["tensors"] if t["new_name"] is None]
    assert all(t["dropped_by"] == "--drop-optimizer" and t["role"] == "optimizer" for t in dropped)
    assert data["sync"] is True and data["verify"] is True
    unsynced = cli("rewrite", str(SLOTS), "-o", str(tmp_path / "u"), "--no-sync", "--json")
    assert unsynced.code == 0 and unsynced.json()["sync"] is False
    assert _values(tmp_path / "u").keys() == _values(SLOTS).keys()


def test_cli_refusals_are_one_line_and_exit_2(tmp_path: Path, cli: Cli) -> None:
    for args, fragment in (
        (["--rename", "dense1=dense2"], "would both become"),
        (["--cast", "int64:float16"], "not a floating-point type"),
        (["--shard-size", "lots"], "--shard-size 'lots'"),
    ):
        result = cli("rewrite", str(MLP), "-o", str(tmp_path / "o"), *args)
        assert result.code == 2 and fragment in result.stderr and result.stderr.count("\n") == 1
        assert result.stderr.startswith("metainspect: ")
    result = cli("rewrite", str(MLP))
    assert result.code == 2 and "-o OUT_PREFIX" in result.stderr
    assert os.listdir(tmp_path) == []


def test_cli_in_place_names_the_backup(tmp_path: Path, cli: Cli) -> None:
    source = _copy(MLP, tmp_path)
    result = cli("rewrite", str(source), "--in-place", "--drop-optimizer")
    assert result.code == 0, result.stderr
    assert f"moved to the backup prefix {source}.bak" in result.stdout
