"""Helping the user find their way: suggestions for names, prefixes and op types; sizes with one
meaning; statistics without overflow; collections without raw control bytes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from metainspect.checkpoint.stats import tensor_stats
from metainspect.suggest import close_names

from helpers.bundle import write_bundle
from helpers.cli import Cli
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp"
_DOUBLE = 2


def test_close_names_prefers_names_containing_the_text() -> None:
    names = ["dense1/bias", "dense1/bias/Adam", "dense2/bias", "dense1/kernel"]
    assert close_names("bias", names) == ["dense1/bias", "dense2/bias", "dense1/bias/Adam"]
    assert close_names("dense1/kernal", names)[0] == "dense1/kernel"
    assert close_names("nothing-alike", names) == []


def test_show_suggests_names_containing_the_text(cli: Cli) -> None:
    result = cli("show", str(MLP), "bias")
    assert result.code == 2
    assert result.stderr.rstrip().endswith("no tensor 'bias'; did you mean 'dense1/bias', 'dense2/bias', "
                                           "'dense1/bias/Adam'?")


def test_show_suggests_the_key_of_a_tf2_object_path(cli: Cli) -> None:
    result = cli("show", str(SAMPLES / "ckpt_tf2" / "ckpt-2"), "optimizer/_variables/2")
    assert result.code == 2
    assert "did you mean 'optimizer/_variables/2/.ATTRIBUTES/VARIABLE_VALUE'" in result.stderr


def test_a_mistyped_prefix_suggests_the_prefixes_that_exist(cli: Cli) -> None:
    result = cli("vars", str(MLP / "modle.ckpt-3"))
    assert result.code == 2
    assert result.stderr.rstrip().endswith("did you mean 'model.ckpt-3'?")


def test_a_sharded_v1_prefix_is_accepted(cli: Cli) -> None:
    by_prefix = cli("vars", str(SAMPLES / "ckpt_v1_sharded" / "model.ckpt"), "--json")
    by_dir = cli("vars", str(SAMPLES / "ckpt_v1_sharded"), "--json")
    assert by_prefix.code == 0, by_prefix.stderr
    assert by_prefix.json() == by_dir.json()


def test_nodes_with_an_op_type_the_graph_lacks_says_so(cli: Cli) -> None:
    result = cli("nodes", str(MLP), "--op", "matmul")
    assert result.code == 2 and result.stdout == ""
    assert result.stderr.rstrip().endswith("no node has op type 'matmul'; did you mean 'MatMul'?")
    assert cli("nodes", str(MLP), "--op", "NoSuchOp").stderr.rstrip().endswith("did you mean 'NoOp'?")


def test_v1_nbytes_are_tensor_bytes_and_stored_bytes_a_field_of_their_own(cli: Cli) -> None:
    rows = {r["name"]: r for r in cli("vars", str(SAMPLES / "ckpt_v1"), "--json").json()}
    assert rows["step"]["nbytes"] == 8 and rows["counts"]["nbytes"] == 16 and rows["emb"]["nbytes"] == 48
    assert rows["step"]["stored_nbytes"] > 8
    v2 = {r["name"]: r for r in cli("vars", str(MLP), "--json").json()}
    assert all(r["nbytes"] == r["stored_nbytes"] for r in v2.values() if r["dtype"] != "string")
    table = cli("vars", str(SAMPLES / "ckpt_v1"))
    assert [line.split()[3:5] for line in table.stdout.splitlines() if line.startswith("step ")] == [["8", "B"]]


def test_stats_of_float64_extremes_are_finite_and_quiet() -> None:
    values = np.array([1e308, -1e308, 1.7e308, 3.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats = tensor_stats(values)
    assert stats is not None and stats.std is not None and stats.mean is not None
    assert np.isfinite(stats.std) and np.isfinite(stats.mean)
    assert stats.mean == pytest.approx(np.mean(values / 1e308) * 1e308)
    assert stats.std == pytest.approx(np.std(values / 1e308) * 1e308)


def test_vars_stats_never_leak_warnings(cli: Cli, tmp_path: Path) -> None:
    values = np.array([1e308, -1e308, 1.7e308, 3.0])
    prefix = write_bundle(tmp_path / "big", {"w": (_DOUBLE, (4,), values.tobytes(), None)})
    result = cli("vars", str(prefix), "--stats", "--json")
    assert result.code == 0 and result.stderr == ""
    stats = result.json()[0]["stats"]
    assert stats["std"] == pytest.approx(float(np.std(values / 1e308) * 1e308))


def test_collections_escapes_control_characters(cli: Cli, tmp_path: Path) -> None:
    from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef

    meta = MetaGraphDef()
    meta.graph_def.node.add(name="x", op="Placeholder")
    meta.collection_def["my_strings"].bytes_list.value.extend([b"ok", b"a\x00b\x1b[31mred", "é".encode()])
    path = tmp_path / "strings.meta"
    path.write_bytes(meta.SerializeToString())
    result = cli("collections", str(path), "my_strings")
    assert result.code == 0
    assert result.stdout.splitlines() == ["ok", "a\\x00b\\x1b[31mred", "é"]
    assert cli("collections", str(path), "my_strings", "--json").json()["items"] == ["ok", "a\x00b\x1b[31mred", "é"]


def test_verify_reports_progress_per_tensor() -> None:
    from metainspect import open_checkpoint

    seen: list[tuple[str, int, int]] = []
    with open_checkpoint(MLP / "model.ckpt-3") as ckpt:
        assert ckpt.verify(lambda step, done, total: seen.append((step, done, total))) == []
        assert seen[-1] == ("verifying", len(ckpt), len(ckpt))



def test_a_state_file_naming_a_checkpoint_without_its_meta_names_the_missing_meta(cli: Cli, tmp_path: Path) -> None:
    for name in ("checkpoint", "model.ckpt-3.index", "model.ckpt-3.data-00000-of-00001"):
        (tmp_path / name).write_bytes((MLP / name).read_bytes())
    result = cli("nodes", str(tmp_path))
    assert result.code == 2
    assert result.stderr == (f"metainspect: {tmp_path}: its checkpoint state file names model.ckpt-3, but "
                             "model.ckpt-3.meta (the graph) is not here\n")


def test_whole_path_components_rank_first() -> None:
    names = ["optimizer/beta1_power/.ATTRIBUTES/VARIABLE_VALUE", "model/w/.ATTRIBUTES/VARIABLE_VALUE",
             "model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE", "model/wide/x"]
    assert close_names("w", names) == ["model/w/.ATTRIBUTES/VARIABLE_VALUE",
                                       "model/w/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
                                       "model/wide/x"]
