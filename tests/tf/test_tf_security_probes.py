"""Adversarial models built with TensorFlow 2.21 in the test run, against `check`'s security scan (`pytest -m tf`).

Each probe hides a payload somewhere the corpus does not: a summary writer kept as an attribute, a
saver-looking ``SaveV2`` hooked on the restore op, a path in a variable or a ``gs://`` URL assembled
at run time, a GraphDef serialized as MIME base64, zlib, a tensor proto, a checkpoint value or an
asset file, ``py_function`` deep in control flow or a batch function, an unregistered op beside a
decoy function of its name... Benign controls do alike things that touch nothing outside the model.

* `test_check_reports_the_payload`: ``run_checks`` names each payload's capability and when it runs
  (with its op, and the file it reads where the graph holds it), at the severity that follows.
* `test_benign_control_has_no_security_finding`: the controls give no ``security.`` finding.
* `test_tensorflow_confirms_the_probe`: TensorFlow runs the probe and the payload does what it says
  (a file appears, a load fails once its input is gone, a callback is called, a decoded GraphDef
  reads the file). Nothing naming ``gs://`` or ``s3://`` is ever run: those graphs are only built.
"""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import sys
import zlib
from collections.abc import Callable
from typing import Any

import pytest

from helpers.security_lab import (
    Expect,
    Lab,
    Probes,
    Proof,
    Workshop,
    X,
    assert_no_security_finding,
    assert_reports_payload,
    depend,
    fails,
    module,
    reduce_length,
    reduce_sum,
    run_proof,
    tf1_graph,
)

pytestmark = pytest.mark.tf

#: written into graphs, never contacted
BUCKET = "gs://metainspect-probe-no-such-bucket"
#: what the nested GraphDefs' payload reads (its length, 7, is what running the decoded graph gives)
SECRET = "secret\n"

PROBES = Probes()
probe = PROBES.probe


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> Workshop:
    return Workshop(tmp_path_factory.mktemp("probes"), PROBES)


# -- builders of nested GraphDefs -------------------------------------------------------------------

def inner_graph_def(lab: Lab, tf: Any, pad: int = 0) -> Any:
    """A GraphDef whose ``result`` is the length of a file it reads (``pad`` lengthens a node name)."""
    secret = lab.sandbox / "secret.txt"
    secret.write_text(SECRET)
    graph = tf.Graph()
    with graph.as_default():
        content = tf.io.read_file(str(secret), name="inner_read" + "x" * pad)
        tf.strings.length(content, name="result")
    return graph.as_graph_def()


def run_graph_def(tf: Any, serialized: bytes) -> int:
    """Imports a serialized GraphDef and runs its ``result``, as a client of the nested graph would."""
    graph_def = tf.compat.v1.GraphDef.FromString(serialized)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as session:
        tf.graph_util.import_graph_def(graph_def, name="")
        return int(session.run("result:0"))


def tf1_blob_model(lab: Lab, tf: Any, blob: bytes, decode: Callable[[Any], Any] | None = None) -> None:
    """A TF1 SavedModel serving ``y`` and ``blob``: a constant holding ``blob``, through ``decode`` if given."""
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        x, y = tf1_graph(tf)
        held = tf.constant(blob, name="model_blob")
        out = decode(held) if decode else held
        session.run(tf.compat.v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": tf.identity(y, name="y"), "blob": tf.identity(out, name="blob")})


# -- file writes ------------------------------------------------------------------------------------

@probe(Expect("file_write", "load_time", "CreateSummaryFileWriter"), Expect("file_write", "serving", "WriteSummary"))
def w_summary_writer_attr(lab: Lab, tf: Any) -> Proof:
    """A summary writer kept as an attribute: loading creates its event file, each request writes to it."""
    logdir = lab.sandbox / "logs"
    writer = tf.summary.create_file_writer(str(logdir), experimental_trackable=True)

    def body(mod: Any, x: Any) -> dict[str, Any]:
        with mod.writer.as_default(step=0):
            tf.summary.scalar("s", tf.reduce_sum(x))
        return {"y": x}
    lab.save_tf2(module(tf, body, writer=writer))
    writer.close()
    shutil.rmtree(logdir)

    def proof() -> None:
        loaded = tf.saved_model.load(str(lab.model))
        (events,) = logdir.glob("events.out.tfevents.*")
        size = events.stat().st_size
        loaded.signatures["serving_default"](x=tf.constant(X))
        assert events.stat().st_size > size
    return proof


@probe(Expect("file_write", "serving", "PrintV2", "printed.txt"))
def w_print_file_deep(lab: Lab, tf: Any) -> Proof:
    """``tf.print`` to a ``file://`` URL in a cond in a while loop in a nested tf.function."""
    out = lab.sandbox / "printed.txt"

    @tf.function
    def inner(x: Any) -> Any:
        def body(i: Any, acc: Any) -> tuple[Any, Any]:
            printed = tf.cond(i >= 0, lambda: depend(tf, tf.print("leak", acc, output_stream=f"file://{out}"), acc),
                              lambda: acc)
            return i + 1, printed
        return tf.while_loop(lambda i, acc: i < 1, body, [tf.constant(0), x])[1]

    @tf.function
    def outer(x: Any) -> Any:
        return inner(x) * 1.0
    lab.save_tf2(module(tf, lambda mod, x: {"y": outer(x)}))

    def proof() -> None:
        lab.serve_tf2()
        assert out.read_text().startswith("leak")
    return proof


@probe(Expect("file_write", "serving", "CacheDatasetV2", "cache"))
def w_cache_file_flat_map(lab: Lab, tf: Any) -> Proof:
    """A dataset cached to a file, inside a ``flat_map`` function."""
    cache = lab.sandbox / "cache"

    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.Dataset.from_tensors(0).flat_map(lambda _: tf.data.Dataset.range(3).cache(str(cache)))
        return {"y": x + reduce_sum(tf, ds)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        lab.serve_tf2()
        assert (lab.sandbox / "cache.index").is_file()
    return proof


@probe(Expect("file_write", "serving", "WriteFile", "out.txt"))
def w_switch_case_write(lab: Lab, tf: Any) -> Proof:
    """``WriteFile`` in the branch of a ``switch_case`` the request selects."""
    out = lab.sandbox / "out.txt"

    def body(mod: Any, x: Any) -> dict[str, Any]:
        def write() -> Any:
            with tf.control_dependencies([tf.io.write_file(str(out), "pwned")]):
                return tf.constant(1.0)
        index = tf.cast(tf.reduce_sum(x) > 0, tf.int32)
        return {"y": x + tf.switch_case(index, [lambda: tf.constant(0.0), write])}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        lab.serve_tf2()
        assert out.read_text() == "pwned"
    return proof


@probe(Expect("file_write", "serving", "DumpTensor"))
def w_dumptensor_tf1(lab: Lab, tf: Any) -> Proof:
    """TF1: the served output depends on a ``DumpTensor`` (a debug op that writes the tensor to a folder)."""
    from tensorflow.python.framework import op_def_library

    dump = lab.sandbox / "dump"
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        x, y = tf1_graph(tf)
        op = op_def_library._apply_op_helper("DumpTensor", tensor_data=y, log_dir_path=str(dump), file_name="leak.pb",
                                             enabled=True, func_name="f", node_name="n", name="dump")[2]
        with tf.control_dependencies([op]):
            y = tf.identity(y, name="y")
        session.run(tf.compat.v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": y})

    def proof() -> None:
        lab.load_tf1()
        assert (dump / "leak.pb").is_file()
    return proof


def tf1_saver_regex_model(lab: Lab, tf: Any, hook: bool) -> None:
    """TF1 graphs whose ``SaveV2`` prefix is ``regex_replace(saver filename, '.*', anywhere)``: saver-like, not the saver's.

    ``hook``: a write and a read run with the saver's restore op (so at load); else the served output needs the write.
    """
    v1 = tf.compat.v1
    planted = str(lab.sandbox / "pwned_ckpt")
    other = str(lab.sandbox / "other_ckpt")
    tf.raw_ops.SaveV2(prefix=other, tensor_names=["secret"], shape_and_slices=[""], tensors=[tf.constant([7.0])])
    with tf.Graph().as_default() as graph, v1.Session() as session:
        x, y = tf1_graph(tf)
        saver = v1.train.Saver(sharded=True)
        filename = graph.get_tensor_by_name(saver.saver_def.filename_tensor_name)
        # the hooked write runs before any request: it cannot be fed x
        leak = tf.constant([1.0]) if hook else x
        write = tf.raw_ops.SaveV2(prefix=tf.strings.regex_replace(filename, ".*", planted), tensor_names=["leak"],
                                  shape_and_slices=[""], tensors=[leak], name="evil_save")
        if hook:
            read = tf.raw_ops.RestoreV2(prefix=tf.strings.regex_replace(filename, ".*", other), tensor_names=["secret"],
                                        shape_and_slices=[""], dtypes=[tf.float32], name="evil_restore")
            tf.group(write, read, name="evil_group")
            y = tf.identity(y, name="y")
        else:
            with tf.control_dependencies([write]):
                y = tf.identity(y, name="y")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(lab.model))
        builder.add_meta_graph_and_variables(session, ["serve"], saver=saver, signature_def_map={
            "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": y})})
        builder.save()
    if hook:
        def attach(meta: Any) -> None:
            restore = next(n for n in meta.graph_def.node if n.name == meta.saver_def.restore_op_name)
            restore.input.append("^evil_group")
        lab.edit_meta_graph(attach)


@probe(Expect("file_write", "load_time", "SaveV2"), Expect("file_read", "load_time", "RestoreV2"))
def w_saver_regex_hook(lab: Lab, tf: Any) -> Proof:
    """A saver-looking ``SaveV2`` and ``RestoreV2`` to any path, run with the saver's restore op when loading."""
    tf1_saver_regex_model(lab, tf, hook=True)

    def proof() -> None:
        lab.load_tf1(serve=False)
        assert (lab.sandbox / "pwned_ckpt.index").is_file()
    return proof


@probe(Expect("file_write", "serving", "SaveV2"))
def w_saver_regex_served(lab: Lab, tf: Any) -> Proof:
    """A saver-looking ``SaveV2`` to any path that the served output depends on."""
    tf1_saver_regex_model(lab, tf, hook=False)

    def proof() -> None:
        lab.load_tf1(serve=False)
        assert not (lab.sandbox / "pwned_ckpt.index").exists()
        lab.load_tf1()
        assert (lab.sandbox / "pwned_ckpt.index").is_file()
    return proof


# -- file reads -------------------------------------------------------------------------------------

@probe(Expect("file_read", "load_time", "RecordInput"))
def r_record_input_main_op(lab: Lab, tf: Any) -> Proof:
    """TF1: a ``RecordInput`` (reads TFRecord files) in the main op."""
    from tensorflow.python.ops import data_flow_ops

    records = lab.sandbox / "data.tfrecord"
    with tf.io.TFRecordWriter(str(records)) as writer:
        writer.write(b"secret")
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        x, y = tf1_graph(tf)
        read = data_flow_ops.RecordInput(file_pattern=str(records), batch_size=1, parallelism=1, buffer_size=1,
                                         name="record_input").get_yield_op()
        session.run(tf.compat.v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": tf.identity(y, name="y")}, main_op=tf.group(read, name="main_op"))

    def proof() -> None:
        lab.load_tf1(serve=False)
        records.unlink()
        fails(tf, lambda: lab.load_tf1(serve=False), "Found no files")
    return proof


@probe(Expect("network", "serving", "ReadFile", BUCKET), proof=False)
def r_gcs_strings_join(lab: Lab, tf: Any) -> None:
    """``ReadFile`` of a ``gs://`` URL joined at run time."""
    lab.save_tf2(module(tf, lambda mod, x: {"y": depend(tf, tf.io.read_file(tf.strings.join([BUCKET, "/secret"])), x)}))


@probe(Expect("network", "serving", "ReadFile"), proof=False)
def r_gcs_variable_path(lab: Lab, tf: Any) -> None:
    """``ReadFile`` of a ``gs://`` URL held in a string variable (so in the checkpoint)."""
    lab.save_tf2(module(tf, lambda mod, x: {"y": depend(tf, tf.io.read_file(mod.path), x)},
                        path=tf.Variable(BUCKET + "/secret")))


@probe(Expect("file_read", "serving", "ReadFile"))
def r_local_variable_path(lab: Lab, tf: Any) -> Proof:
    """``ReadFile`` of a local path held in a string variable."""
    secret = lab.sandbox / "secret.txt"
    secret.write_text("s")
    lab.save_tf2(module(tf, lambda mod, x: {"y": depend(tf, tf.io.read_file(mod.path), x)},
                        path=tf.Variable(str(secret))))

    def proof() -> None:
        lab.serve_tf2()
        secret.unlink()
        fails(tf, lab.serve_tf2, "secret.txt")
    return proof


@probe(Expect("network", "serving", "ReadFile", BUCKET), proof=False)
def r_gcs_captured_const(lab: Lab, tf: Any) -> None:
    """``ReadFile`` of a ``gs://`` constant captured by a nested tf.function."""
    url = tf.constant(BUCKET + "/captured")

    @tf.function
    def inner(x: Any) -> Any:
        return depend(tf, tf.io.read_file(url), x)
    lab.save_tf2(module(tf, lambda mod, x: {"y": inner(x)}))


@probe(Expect("network", "serving", "TFRecordDataset", BUCKET), proof=False)
def r_gcs_shuffle_interleave(lab: Lab, tf: Any) -> None:
    """TFRecord files named by ``gs://`` constants, through ``shuffle`` and ``interleave``."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        files = tf.data.Dataset.from_tensor_slices([BUCKET + "/a.tfr", BUCKET + "/b.tfr"]).shuffle(2)
        return {"y": x + reduce_length(tf, files.interleave(tf.data.TFRecordDataset, cycle_length=1))}
    lab.save_tf2(module(tf, body))


@probe(Expect("network", "serving", "MatchingFiles", BUCKET), proof=False)
def r_gcs_list_files(lab: Lab, tf: Any) -> None:
    """``Dataset.list_files`` of a ``gs://`` pattern."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        files = tf.data.Dataset.list_files(BUCKET + "/*.tfr", shuffle=False)
        return {"y": x + reduce_length(tf, files.interleave(tf.data.TFRecordDataset))}
    lab.save_tf2(module(tf, body))


@probe(Expect("network", "serving", "CSVDatasetV2", "s3://"), proof=False)
def r_s3_csv(lab: Lab, tf: Any) -> None:
    """A CSV dataset on ``s3://``."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        return {"y": x + reduce_length(tf, tf.data.experimental.CsvDataset("s3://metainspect-probe/x.csv",
                                                                           [tf.string]))}
    lab.save_tf2(module(tf, body))


@probe(Expect("file_read", "serving", "LoadDataset", "ds"))
def r_dataset_load(lab: Lab, tf: Any) -> Proof:
    """``Dataset.load`` of a dataset saved outside the model."""
    saved = lab.sandbox / "ds"
    tf.data.Dataset.range(3).save(str(saved))
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + reduce_sum(tf, tf.data.Dataset.load(str(saved)))}))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [4.0, 5.0]  # x + 0 + 1 + 2
    return proof


@probe(Expect("file_read", "serving", "SqlDataset", "db.sqlite"))
def r_sql_dataset(lab: Lab, tf: Any) -> Proof:
    """A SQLite query as a dataset."""
    db = lab.sandbox / "db.sqlite"
    connection = sqlite3.connect(db)
    with connection:
        connection.execute("create table t (v text)")
        connection.execute("insert into t values ('secret')")
    connection.close()

    def body(mod: Any, x: Any) -> dict[str, Any]:
        rows = tf.data.experimental.SqlDataset("sqlite", str(db), "SELECT v FROM t", (tf.string,))
        return {"y": x + reduce_length(tf, rows)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [7.0, 8.0]  # x + len("secret")
    return proof


@probe()
def r_table_eager_tensor_path(lab: Lab, tf: Any) -> Proof:
    """Benign: a table initialized from an outside file by an eager tensor path; TF copies the file into assets."""
    vocab = lab.sandbox / "outside_vocab.txt"
    vocab.write_text("a\nb\n")
    init = tf.lookup.TextFileInitializer(tf.constant(str(vocab)), tf.string, tf.lookup.TextFileIndex.WHOLE_LINE,
                                         tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER)
    table = tf.lookup.StaticHashTable(init, -1)
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + tf.cast(mod.table.lookup(tf.constant("b")), tf.float32)},
                        table=table))

    def proof() -> None:
        assert sorted(os.listdir(lab.model / "assets")) == ["outside_vocab.txt"]
        vocab.write_text("z\ny\nb\n")
        assert lab.serve_tf2()["y"].tolist() == [2.0, 3.0]  # 'b' on line 1 of the asset copy
    return proof


@probe(Expect("file_read", "load_time", "InitializeTableFromTextFileV2", "outside.txt"))
def r_asset_path_traversal(lab: Lab, tf: Any) -> Proof:
    """An asset table whose ``asset_file_def`` filename is edited to ``../``-climb out of the model to another file."""
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nb\n")
    table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(str(vocab), tf.string, -2, tf.int64, -1), -1)
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + tf.cast(mod.table.lookup(tf.constant("b")), tf.float32)},
                        table=table))
    outside = lab.sandbox / "outside.txt"
    outside.write_text("q\nw\ne\nb\n")
    climb = os.path.relpath(outside, lab.model / "assets")

    def retarget(meta: Any) -> None:
        meta.asset_file_def[0].filename = climb
    lab.edit_meta_graph(retarget)
    for copied in (lab.model / "assets").iterdir():
        copied.unlink()

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [4.0, 5.0]  # 'b' on line 3 of outside.txt
    return proof


@probe(Expect("file_read", "serving", "GenerateVocabRemapping", "new.txt"))
def r_vocab_remapping(lab: Lab, tf: Any) -> Proof:
    """``GenerateVocabRemapping`` of two vocabulary files outside the model."""
    new, old = lab.sandbox / "new.txt", lab.sandbox / "old.txt"
    new.write_text("x\ny\n")
    old.write_text("y\nx\n")

    def body(mod: Any, x: Any) -> dict[str, Any]:
        remap, count = tf.raw_ops.GenerateVocabRemapping(new_vocab_file=str(new), old_vocab_file=str(old),
                                                         new_vocab_offset=0, num_new_vocab=2)
        return {"y": x + tf.cast(tf.reduce_sum(remap) + tf.cast(count, tf.int64), tf.float32)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [4.0, 5.0]  # x + (1 + 0) + 2 found
    return proof


@probe(Expect("file_read", "load_time", "ReadFile", "secret.txt"))
def r_tf1_main_op_v1cond_read(lab: Lab, tf: Any) -> Proof:
    """TF1: ``ReadFile`` in a v1 ``cond`` (Switch/Merge) in the main op."""
    v1 = tf.compat.v1
    secret = lab.sandbox / "secret.txt"
    secret.write_text("s")
    with tf.Graph().as_default(), v1.Session() as session:
        x, y = tf1_graph(tf)
        v1.disable_control_flow_v2()
        try:
            pred = v1.placeholder_with_default(True, [], name="pred")
            read = tf.cond(pred, lambda: tf.strings.length(tf.io.read_file(str(secret))), lambda: tf.constant(0))
        finally:
            v1.enable_control_flow_v2()
        session.run(v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": tf.identity(y, name="y")}, main_op=tf.group(read, name="main_op"))

    def proof() -> None:
        lab.load_tf1(serve=False)
        secret.unlink()
        fails(tf, lambda: lab.load_tf1(serve=False), "secret.txt")
    return proof


@probe(Expect("file_read", "load_time", "ReadFile", "secret.txt"))
def r_tf1_local_var_init(lab: Lab, tf: Any) -> Proof:
    """TF1: a local variable initialized by ``ReadFile``, run by the standard main op."""
    v1 = tf.compat.v1
    secret = lab.sandbox / "secret.txt"
    secret.write_text("s")
    with tf.Graph().as_default(), v1.Session() as session:
        x, y = tf1_graph(tf)
        stash = v1.Variable(tf.io.read_file(str(secret)), collections=[v1.GraphKeys.LOCAL_VARIABLES], name="stash")
        session.run(v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": tf.identity(y, name="y"), "s": tf.identity(stash, name="s")},
                     main_op=v1.saved_model.main_op.main_op())

    def proof() -> None:
        secret.write_text("changed")
        served = lab.load_tf1()
        assert served is not None and served["s"] == b"changed"
    return proof


@probe(Expect("file_read", "load_time", "TextLineDataset", "secret.txt"))
def r_tf2_dataset_attribute(lab: Lab, tf: Any) -> Proof:
    """A ``TextLineDataset`` kept as an attribute: the TF1 loader reads its original path, not the asset copy."""
    secret = lab.sandbox / "secret.txt"
    secret.write_text("secret\n")
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + reduce_length(tf, mod.ds)}, ds=tf.data.TextLineDataset(str(secret))))

    def proof() -> None:
        secret.write_text("changed-to-longer\n")
        assert lab.serve_tf2()["y"].tolist() == [7.0, 8.0]  # the asset copy: len("secret")
        served = lab.load_tf1()
        assert served is not None and served["y"].tolist() == [18.0, 19.0]  # the original: len("changed-to-longer")
    return proof


@probe(Expect("network", "serving", "DecodeProtoV2", BUCKET), proof=False)
def r_decode_proto_gcs_descriptor(lab: Lab, tf: Any) -> None:
    """``decode_proto`` with its descriptor on ``gs://``."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        _, values = tf.io.decode_proto(tf.constant([b""]), "tensorflow.Example", ["features"], [tf.string],
                                       descriptor_source=BUCKET + "/desc.pb")
        return {"y": depend(tf, tf.strings.as_string(tf.size(values[0])), x)}
    lab.save_tf2(module(tf, body))


@probe(Expect("file_read", "load_time", "RestoreV2", "other"))
def r_init_from_checkpoint_main_op(lab: Lab, tf: Any) -> Proof:
    """TF1: ``init_from_checkpoint`` of an outside checkpoint, run again by the main op at load."""
    v1 = tf.compat.v1
    other = str(lab.sandbox / "other")
    with tf.Graph().as_default(), v1.Session() as session:
        v1.get_variable("w", initializer=tf.constant([9.0]))
        session.run(v1.global_variables_initializer())
        v1.train.Saver().save(session, other)
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None], name="x")
        w = v1.get_variable("w", shape=[1], initializer=tf.zeros_initializer())
        v1.train.init_from_checkpoint(other, {"w": "w"})
        session.run(v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": tf.identity(x * w, name="y")},
                     main_op=v1.group(v1.global_variables_initializer(), name="main_op"))

    def proof() -> None:
        served = lab.load_tf1()
        assert served is not None and served["y"].tolist() == [9.0, 18.0]
    return proof


@probe(Expect("file_read", "load_time", "GenerateVocabRemapping", "new.txt"),
       Expect("file_read", "load_time", "LoadAndRemapMatrix", "old_ckpt"))
def r_warm_start_vocab_main_op(lab: Lab, tf: Any) -> Proof:
    """TF1: ``warm_start`` with a vocabulary remapping from outside files, run again by the main op at load."""
    v1 = tf.compat.v1
    old_vocab, new_vocab, ckpt = lab.sandbox / "old.txt", lab.sandbox / "new.txt", str(lab.sandbox / "old_ckpt")
    old_vocab.write_text("a\nb\n")
    new_vocab.write_text("b\na\n")
    with tf.Graph().as_default(), v1.Session() as session:
        v1.get_variable("emb", initializer=tf.constant([[1.0], [2.0]]))
        session.run(v1.global_variables_initializer())
        v1.train.Saver().save(session, ckpt)
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None], name="x")
        emb = v1.get_variable("emb", shape=[2, 1], initializer=tf.zeros_initializer())
        v1.train.warm_start(ckpt, vars_to_warm_start="emb", var_name_to_vocab_info={
            "emb": v1.train.VocabInfo(str(new_vocab), 2, 0, str(old_vocab))})
        session.run(v1.global_variables_initializer())
        lab.save_tf1(session, {"x": x}, {"y": tf.identity(x * tf.reduce_sum(emb), name="y")},
                     main_op=v1.group(v1.global_variables_initializer(), name="main_op"))

    def proof() -> None:
        served = lab.load_tf1()
        assert served is not None and served["y"].tolist() == [3.0, 6.0]
    return proof


# -- GraphDefs nested in the model --------------------------------------------------------------------
# each nested GraphDef reads sandbox/secret.txt; the expectation names that file, so only the nested node matches

NESTED = Expect("file_read", "serving", "ReadFile", "secret.txt")


@probe(NESTED)
def n_tf2_function_const(lab: Lab, tf: Any) -> Proof:
    """A GraphDef in a string constant of a served tf.function."""
    raw = inner_graph_def(lab, tf).SerializeToString()
    lab.save_tf2(module(tf, lambda mod, x: {"y": x, "blob": tf.constant(raw)}))

    def proof() -> None:
        assert run_graph_def(tf, lab.serve_tf2()["blob"]) == len(SECRET)
    return proof


@probe(NESTED)
def n_b64_urlsafe_nopad_decode(lab: Lab, tf: Any) -> Proof:
    """URL-safe base64 without ``=`` padding, decoded by ``tf.io.decode_base64`` in the served graph."""
    encoded = b""
    for pad in range(3):  # a node name one longer changes the length mod 3
        encoded = base64.urlsafe_b64encode(inner_graph_def(lab, tf, pad).SerializeToString()).rstrip(b"=")
        if len(encoded) % 4:
            break
    tf1_blob_model(lab, tf, encoded, decode=tf.io.decode_base64)

    def proof() -> None:
        assert len(encoded) % 4  # no padding to strip: the length shows it
        served = lab.load_tf1()
        assert served is not None and run_graph_def(tf, served["blob"]) == len(SECRET)
    return proof


@probe(NESTED)
def n_b64_urlsafe_padded_decode(lab: Lab, tf: Any) -> Proof:
    """Control for `n_b64_urlsafe_nopad_decode`: the same with ``=`` padding."""
    encoded = b""
    for pad in range(3):
        encoded = base64.urlsafe_b64encode(inner_graph_def(lab, tf, pad).SerializeToString())
        if encoded.endswith(b"="):
            break
    tf1_blob_model(lab, tf, encoded, decode=tf.io.decode_base64)

    def proof() -> None:
        assert encoded.endswith(b"=")
        served = lab.load_tf1()
        assert served is not None and run_graph_def(tf, served["blob"]) == len(SECRET)
    return proof


@probe(NESTED)
def n_b64_mime_lines(lab: Lab, tf: Any) -> Proof:
    """MIME base64 (a newline every 76 characters) in a constant, for a client to decode."""
    encoded = base64.encodebytes(inner_graph_def(lab, tf, 1).SerializeToString())
    tf1_blob_model(lab, tf, encoded)

    def proof() -> None:
        assert b"\n" in encoded.rstrip(b"\n")
        assert run_graph_def(tf, base64.decodebytes(encoded)) == len(SECRET)
    return proof


@probe(NESTED)
def n_serialized_tensor(lab: Lab, tf: Any) -> Proof:
    """A serialized TensorProto holding the GraphDef, parsed by ``tf.io.parse_tensor`` in the served graph."""
    raw = inner_graph_def(lab, tf).SerializeToString()
    tf1_blob_model(lab, tf, tf.io.serialize_tensor(tf.constant(raw)).numpy(),
                   decode=lambda held: tf.io.parse_tensor(held, tf.string))

    def proof() -> None:
        served = lab.load_tf1()
        assert served is not None and run_graph_def(tf, served["blob"]) == len(SECRET)
    return proof


@probe(NESTED)
def n_zlib(lab: Lab, tf: Any) -> Proof:
    """zlib-compressed, inflated by ``tf.io.decode_compressed`` in the served graph."""
    raw = inner_graph_def(lab, tf).SerializeToString()
    tf1_blob_model(lab, tf, zlib.compress(raw), decode=lambda held: tf.io.decode_compressed(held, "ZLIB"))

    def proof() -> None:
        served = lab.load_tf1()
        assert served is not None and run_graph_def(tf, served["blob"]) == len(SECRET)
    return proof


@probe(NESTED)
def n_in_checkpoint_variable(lab: Lab, tf: Any) -> Proof:
    """The value of a string variable: in the checkpoint, not the graph."""
    raw = inner_graph_def(lab, tf).SerializeToString()
    lab.save_tf2(module(tf, lambda mod, x: {"y": x, "blob": tf.identity(mod.blob)}, blob=tf.Variable(raw)))

    def proof() -> None:
        assert run_graph_def(tf, lab.serve_tf2()["blob"]) == len(SECRET)
    return proof


@probe(NESTED)
def n_metagraphdef(lab: Lab, tf: Any) -> Proof:
    """A serialized MetaGraphDef (the GraphDef one field down) in a constant."""
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(inner_graph_def(lab, tf), name="")
        raw = tf.compat.v1.train.export_meta_graph(graph=graph).SerializeToString()
    tf1_blob_model(lab, tf, raw)

    def proof() -> None:
        inner = tf.compat.v1.MetaGraphDef.FromString(raw).graph_def.SerializeToString()
        assert run_graph_def(tf, inner) == len(SECRET)
    return proof


@probe(NESTED)
def n_in_asset_file(lab: Lab, tf: Any) -> Proof:
    """A GraphDef shipped as an asset file, read and served."""
    graph_file = lab.sandbox / "graph.pb"
    graph_file.write_bytes(inner_graph_def(lab, tf).SerializeToString())
    lab.save_tf2(module(tf, lambda mod, x: {"y": x, "blob": tf.io.read_file(mod.asset.asset_path)},
                        asset=tf.saved_model.Asset(str(graph_file))))

    def proof() -> None:
        assert run_graph_def(tf, lab.serve_tf2()["blob"]) == len(SECRET)
    return proof


@probe(Expect("file_read", "serving", "TextLineDataset"))
def n_dataset_from_graph(lab: Lab, tf: Any) -> Proof:
    """A dataset graph (``DatasetToGraphV2``) rebuilt by ``DatasetFromGraph`` at serving."""
    secret = lab.sandbox / "secret.txt"
    secret.write_text(SECRET)
    graph_def = tf.raw_ops.DatasetToGraphV2(input_dataset=tf.data.TextLineDataset(str(secret))._variant_tensor).numpy()

    def body(mod: Any, x: Any) -> dict[str, Any]:
        variant = tf.raw_ops.DatasetFromGraph(graph_def=tf.where(tf.size(x) >= 0, tf.constant(graph_def), ""))
        return {"y": x + reduce_length(tf, tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string)))}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        secret.write_text("much-longer-secret\n")
        assert lab.serve_tf2()["y"].tolist() == [19.0, 20.0]  # read when served: len("much-longer-secret")
    return proof


# -- Python and native code ---------------------------------------------------------------------------

@probe(Expect("python", "serving", "EagerPyFunc"))
def py_deep_while_cond(lab: Lab, tf: Any) -> Proof:
    """``py_function`` in a cond in a while loop in a nested tf.function."""
    @tf.function
    def inner(x: Any) -> Any:
        def body(i: Any, acc: Any) -> tuple[Any, Any]:
            out = tf.cond(i >= 0, lambda: tf.py_function(lab.callback(), [acc], tf.float32), lambda: acc)
            out.set_shape([None])
            return i + 1, out
        return tf.while_loop(lambda i, acc: i < 1, body, [tf.constant(0), x])[1]

    @tf.function
    def outer(x: Any) -> Any:
        return inner(x) + 0.0
    lab.save_tf2(module(tf, lambda mod, x: {"y": outer(x)}))

    def proof() -> None:
        lab.serve_tf2()
        assert lab.fired
    return proof


@probe(Expect("python", "serving", "EagerPyFunc"))
def py_keras_layer(lab: Lab, tf: Any) -> Proof:
    """``py_function`` in a Keras layer's ``call``, exported by ``Model.export``."""
    import keras

    class PyLayer(keras.layers.Layer):
        def call(self, x: Any) -> Any:
            y = tf.py_function(lab.callback(), [x], tf.float32)
            y.set_shape(x.shape)
            return y
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(PyLayer()(inputs)))
    model.export(str(lab.model), verbose=False)
    lab.kept.append(model)

    def proof() -> None:
        loaded = tf.saved_model.load(str(lab.model))  # held: its functions reference its variables weakly
        loaded.serve(tf.ones([1, 2]))
        assert lab.fired
    return proof


@probe(Expect("python", "serving", "PyFunc"))
def py_numpy_fn_reduce(lab: Lab, tf: Any) -> Proof:
    """``numpy_function`` in a dataset's ``reduce`` function."""
    called = lab.callback()

    def add(total: Any, v: Any) -> Any:
        out = tf.numpy_function(called, [total + v], tf.int64)
        out.set_shape([])
        return out
    lab.save_tf2(module(tf, lambda mod, x: {
        "y": x + tf.cast(tf.data.Dataset.range(3).reduce(tf.constant(0, tf.int64), add), tf.float32)}))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [4.0, 5.0]
        assert lab.fired
    return proof


@probe(Expect("python", "serving", "EagerPyFunc"))
def py_batch_function(lab: Lab, tf: Any) -> Proof:
    """``py_function`` in a ``BatchFunction``'s function."""
    @tf.nondifferentiable_batch_function(1, 4, 10)
    def batched(x: Any) -> Any:
        y = tf.py_function(lab.callback(), [x], tf.float32)
        y.set_shape(x.shape)
        return y
    lab.save_tf2(module(tf, lambda mod, x: {"y": batched(x)}))

    def proof() -> None:
        lab.serve_tf2()
        assert lab.fired
    return proof


@probe(Expect("python", "serving", "PyFunc"))
def py_generator_dataset(lab: Lab, tf: Any) -> Proof:
    """``Dataset.from_generator`` (``PyFunc`` in its generator functions)."""
    def generate() -> Any:
        lab.fired.append("generated")
        yield 1

    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.Dataset.from_generator(generate, output_signature=tf.TensorSpec([], tf.int32))
        return {"y": x + tf.cast(ds.reduce(0, lambda total, v: total + v), tf.float32)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        lab.serve_tf2()
        assert lab.fired
    return proof


@probe(Expect("python", "off_path", "EagerPyFunc"))
def py_custom_gradient(lab: Lab, tf: Any) -> Proof:
    """``py_function`` in a custom gradient: serving never runs it, differentiating the loaded function does."""
    @tf.custom_gradient
    def double(x: Any) -> Any:
        def grad(dy: Any) -> Any:
            return tf.py_function(lab.callback(), [dy], tf.float32)
        return x * 2.0, grad
    lab.save_tf2(module(tf, lambda mod, x: {"y": double(x)}))

    def proof() -> None:
        serve = tf.saved_model.load(str(lab.model)).signatures["serving_default"]
        x = tf.constant(X)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = serve(x=x)["y"]
        assert not lab.fired
        tape.gradient(y, x)
        assert lab.fired
    return proof


@probe(Expect("python", "serving", "EagerPyFunc"))
def py_second_signature(lab: Lab, tf: Any) -> Proof:
    """``py_function`` only in a second signature, ``admin``."""
    mod = tf.Module()
    spec = [tf.TensorSpec([None], tf.float32)]
    mod.serve = tf.function(lambda x: {"y": x * 2.0}, input_signature=spec)
    mod.admin = tf.function(lambda x: {"y": tf.py_function(lab.callback(), [x], tf.float32)}, input_signature=spec)
    lab.save_tf2(mod, {"serving_default": mod.serve, "admin": mod.admin})

    def proof() -> None:
        lab.serve_tf2()
        assert not lab.fired
        lab.serve_tf2("admin")
        assert lab.fired
    return proof


@probe(Expect("python", "serving", "PyFunc"))
def multi_metagraph_serve_second(lab: Lab, tf: Any) -> Proof:
    """Two MetaGraphDefs: ``train`` (clean) first, ``serve`` (a ``py_func`` on the served path) second."""
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        x, y = tf1_graph(tf)
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(lab.model))
        builder.add_meta_graph_and_variables(session, ["train"], signature_def_map={
            "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": tf.identity(y, name="y")})})
    with tf.Graph().as_default() as graph, v1.Session() as session:
        x, y = tf1_graph(tf)
        y = v1.py_func(lab.callback(), [y], tf.float32, name="evil_py")
        session.run(v1.global_variables_initializer())
        builder.add_meta_graph(["serve"], signature_def_map={
            "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": tf.identity(y, name="y")})})
        builder.save()
    lab.kept.append(graph)

    def proof() -> None:
        lab.load_tf1(tags=("train",))
        assert not lab.fired
        lab.load_tf1(tags=("serve",))
        assert lab.fired
    return proof


def add_native_op(meta: Any) -> None:
    """A node of the unregistered op ``EvilNativeOp`` (a custom library's) that the served ``y`` waits for."""
    meta.graph_def.node.add(name="evil", op="EvilNativeOp")
    next(n for n in meta.graph_def.node if n.name == "y").input.append("^evil")


def not_registered(lab: Lab, tf: Any) -> Proof:
    def proof() -> None:
        fails(tf, lab.load_tf1, "Op type not registered 'EvilNativeOp'")
    return proof


@probe(Expect("native", "serving", "EvilNativeOp"))
def nat_decoy_nested_function_name(lab: Lab, tf: Any) -> Proof:
    """An unregistered op, beside a constant holding a GraphDef whose library defines a function of that name."""
    graph = tf.Graph()
    with graph.as_default():
        @tf.function
        def decoy() -> Any:
            return tf.constant(1)
        tf.identity(decoy(), name="result")
    graph_def = graph.as_graph_def()
    old = graph_def.library.function[0].signature.name
    graph_def.library.function[0].signature.name = "EvilNativeOp"
    for node in graph_def.node:
        if node.attr["f"].func.name == old:
            node.attr["f"].func.name = "EvilNativeOp"
    tf1_blob_model(lab, tf, graph_def.SerializeToString())
    lab.edit_meta_graph(add_native_op)
    return not_registered(lab, tf)


@probe(Expect("native", "serving", "EvilNativeOp"))
def nat_unregistered_no_decoy(lab: Lab, tf: Any) -> Proof:
    """Control for `nat_decoy_nested_function_name`: the same op, no decoy."""
    tf1_blob_model(lab, tf, b"just a string")
    lab.edit_meta_graph(add_native_op)
    return not_registered(lab, tf)


# -- benign controls --------------------------------------------------------------------------------

@probe()
def b_asset_table(lab: Lab, tf: Any) -> Proof:
    """A vocabulary table from an asset."""
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nb\n")
    init = tf.lookup.TextFileInitializer(str(vocab), tf.string, -2, tf.int64, -1)
    table = tf.lookup.StaticVocabularyTable(init, 1)
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + tf.cast(mod.table.lookup(tf.constant("b")), tf.float32)},
                        table=table))

    def proof() -> None:
        vocab.unlink()  # the model's own copy is used
        assert lab.serve_tf2()["y"].tolist() == [2.0, 3.0]
    return proof


@probe()
def b_inmemory_data(lab: Lab, tf: Any) -> Proof:
    """An in-memory dataset pipeline with an in-memory cache."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        ds = tf.data.Dataset.from_tensor_slices(x).map(lambda v: v * 2).batch(2).cache().prefetch(1)
        ds = ds.shuffle(4).unbatch().filter(lambda v: v > 0)
        return {"y": x + ds.reduce(0.0, lambda total, v: total + v)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == [7.0, 8.0]
        assert not any(lab.sandbox.iterdir())
    return proof


@probe(proof=False)
def b_print_console(lab: Lab, tf: Any) -> None:
    """``tf.print`` to stderr, stdout and absl logging."""
    import absl.logging

    def body(mod: Any, x: Any) -> dict[str, Any]:
        prints = [tf.print("err", x, output_stream=sys.stderr), tf.print("out", x, output_stream=sys.stdout),
                  tf.print("log", x, output_stream=absl.logging.info),
                  tf.print("warn", x, output_stream=absl.logging.warning)]
        with tf.control_dependencies(prints):
            return {"y": tf.identity(x)}
    lab.save_tf2(module(tf, body))


@probe(proof=False)
def b_asserts(lab: Lab, tf: Any) -> None:
    """Asserts and ``check_numerics``."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        with tf.control_dependencies([tf.debugging.assert_non_negative(x), tf.debugging.assert_rank(x, 1),
                                      tf.Assert(tf.reduce_all(x > -1), [x])]):
            return {"y": tf.debugging.check_numerics(x, "bad")}
    lab.save_tf2(module(tf, body))


@probe(proof=False)
def b_url_strings(lab: Lab, tf: Any) -> None:
    """URLs and paths as plain strings that no op opens."""
    def body(mod: Any, x: Any) -> dict[str, Any]:
        urls = tf.strings.regex_replace(tf.strings.join([BUCKET + "/", tf.strings.as_string(x)]), "gs://",
                                        "file:///etc/passwd")
        return {"y": x, "urls": urls, "path": tf.constant(["/etc/shadow", "s3://b/k", "hdfs://nn/x"])}
    lab.save_tf2(module(tf, body))


@probe(proof=False)
def b_keras_dense(lab: Lab, tf: Any) -> None:
    """A compiled Keras model of dense layers, exported by ``Model.export``."""
    import keras

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dense(4)(inputs)))
    model.compile("adam", "mse")
    model.export(str(lab.model), verbose=False)


@probe()
def b_tf1_asset_table_saver(lab: Lab, tf: Any) -> Proof:
    """TF1: a table from an asset, initialized by the main op."""
    v1 = tf.compat.v1
    vocab = lab.sandbox / "vocab.txt"
    vocab.write_text("a\nb\n")
    with tf.Graph().as_default(), v1.Session() as session:
        x, y = tf1_graph(tf)
        asset = tf.constant(str(vocab), name="vocab_path")
        v1.add_to_collection(v1.GraphKeys.ASSET_FILEPATHS, asset)
        table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(asset, tf.string, -2, tf.int64, -1), -1)
        y = y + tf.cast(table.lookup(tf.constant("b")), tf.float32)
        session.run([v1.global_variables_initializer(), v1.tables_initializer()])
        builder = v1.saved_model.Builder(str(lab.model))
        builder.add_meta_graph_and_variables(
            session, ["serve"], main_op=v1.tables_initializer(), assets_collection=v1.get_collection(
                v1.GraphKeys.ASSET_FILEPATHS), signature_def_map={
                "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": tf.identity(y, name="y")})})
        builder.save()

    def proof() -> None:
        vocab.unlink()  # the model's own copy is used
        served = lab.load_tf1()
        assert served is not None and served["y"].tolist() == [2.0, 3.0]
    return proof


@probe()
def b_decode_proto_bytes(lab: Lab, tf: Any) -> Proof:
    """``decode_proto`` with its descriptor inline (``bytes://``)."""
    from google.protobuf import descriptor_pb2
    from tensorflow.core.example import example_pb2, feature_pb2

    descriptors = descriptor_pb2.FileDescriptorSet()
    for proto in (feature_pb2, example_pb2):
        proto.DESCRIPTOR.CopyToProto(descriptors.file.add())

    def body(mod: Any, x: Any) -> dict[str, Any]:
        _, values = tf.io.decode_proto(tf.constant([b""]), "tensorflow.Example", ["features"], [tf.string],
                                       descriptor_source=b"bytes://" + descriptors.SerializeToString())
        return {"y": depend(tf, tf.strings.as_string(tf.size(values[0])), x)}
    lab.save_tf2(module(tf, body))

    def proof() -> None:
        assert lab.serve_tf2()["y"].tolist() == X
    return proof


@probe(proof=False)
def b_tf1_v1_saver_meta(lab: Lab, tf: Any) -> None:
    """TF1: a V1-format saver's checkpoint and meta graph (no SavedModel)."""
    from tensorflow.core.protobuf import saver_pb2

    v1 = tf.compat.v1
    lab.model.mkdir()
    with tf.Graph().as_default(), v1.Session() as session:
        _, y = tf1_graph(tf)
        tf.identity(y, name="output")
        saver = v1.train.Saver(write_version=saver_pb2.SaverDef.V1)
        session.run(v1.global_variables_initializer())
        saver.save(session, str(lab.model / "model.ckpt"))


@probe(proof=False)
def b_keyvalue_table(lab: Lab, tf: Any) -> None:
    """A table from in-graph keys and values, beside a variable."""
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["a", "b"], [1, 2]), -1)
    lab.save_tf2(module(tf, lambda mod, x: {"y": x + tf.cast(mod.table.lookup(tf.constant("b")), tf.float32)},
                        table=table, v=tf.Variable([1.0, 2.0])))


# -- tests ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PROBES.attacks())
def test_check_reports_the_payload(workshop: Workshop, name: str) -> None:
    """Every expected finding is there (capability, when, op, target), at the severity that follows."""
    assert_reports_payload(workshop, name)


@pytest.mark.parametrize("name", PROBES.controls())
def test_benign_control_has_no_security_finding(workshop: Workshop, name: str) -> None:
    assert_no_security_finding(workshop, name)


@pytest.mark.parametrize("name", PROBES.proved())
def test_tensorflow_confirms_the_probe(workshop: Workshop, name: str) -> None:
    """TensorFlow runs the probe: the payload has the effect its expectation claims (the controls run cleanly)."""
    run_proof(workshop, name)
