"""Bad input gets one clear line naming the file, exit code 2, and no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.cli import Cli
from helpers.paths import SAMPLES

MLP = SAMPLES / "mlp"


def _assert_one_line(result, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert result.code == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("metainspect: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def _meta() -> Path:
    return next(MLP.glob("*.meta"))


def test_missing_file(tmp_path: Path, cli: Cli) -> None:
    _assert_one_line(cli("nodes", str(tmp_path / "nope.meta")), "nope.meta", "no such file")


def test_directory_without_model(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    _assert_one_line(cli("nodes", str(tmp_path)), str(tmp_path), "no saved_model.pb")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_protobuf(tmp_path: Path, keep: float, cli: Cli) -> None:
    data = _meta().read_bytes()
    bad = tmp_path / "cut.meta"
    bad.write_bytes(data[: int(len(data) * keep)])
    _assert_one_line(cli("nodes", str(bad)), "cut.meta", "truncated or corrupt")


def test_corrupt_protobuf(tmp_path: Path, cli: Cli) -> None:
    data = bytearray(_meta().read_bytes())
    data[1:5] = b"\xff\xff\xff\xff"  # the first field's length becomes absurd
    bad = tmp_path / "bad.meta"
    bad.write_bytes(bytes(data))
    _assert_one_line(cli("info", str(bad)), "bad.meta", "corrupt")


def test_index_passed_to_nodes_names_the_right_command(cli: Cli) -> None:
    index = next((SAMPLES / "ckpt_dtypes").glob("*.index"))  # no .meta beside this checkpoint
    _assert_one_line(cli("nodes", str(index)), index.name, "metainspect vars")


def test_data_shard_passed_to_nodes(cli: Cli) -> None:
    shard = next((SAMPLES / "ckpt_dtypes").glob("*.data-*"))
    _assert_one_line(cli("placeholders", str(shard)), "metainspect vars")


def test_checkpoint_files_with_a_meta_beside_them_are_read_as_that_graph(cli: Cli) -> None:
    for given in (next(MLP.glob("*.index")), next(MLP.glob("*.data-*"))):
        result = cli("placeholders", str(given))
        assert result.code == 0 and "keep_prob" in result.stdout, result


def test_text_garbage(tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "model.pbtxt"
    bad.write_text("this is just some text\nnot a graph at all\n")
    _assert_one_line(cli("nodes", str(bad)), "model.pbtxt", "not a TensorFlow graph")


def test_binary_garbage(tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "random.pb"
    bad.write_bytes(bytes(range(256)) * 8)
    _assert_one_line(cli("nodes", str(bad)), "random.pb")


def test_empty_file(tmp_path: Path, cli: Cli) -> None:
    bad = tmp_path / "empty.meta"
    bad.touch()
    _assert_one_line(cli("nodes", str(bad)), "empty.meta", "empty")


def test_file_over_protobuf_limit(tmp_path: Path, cli: Cli) -> None:
    huge = tmp_path / "huge.meta"
    with open(huge, "wb") as f:  # sparse: no disk is used
        f.truncate(2**31 + 10)
    _assert_one_line(cli("nodes", str(huge)), "huge.meta", "2 GiB")
    os.remove(huge)


def test_unknown_tags(cli: Cli) -> None:
    _assert_one_line(cli("signatures", str(SAMPLES / "savedmodel_tf1"), "--tags", "gpu"), "no meta graph tagged gpu")


def test_debug_shows_traceback(tmp_path: Path, cli: Cli) -> None:
    result = cli("--debug", "nodes", str(tmp_path / "nope.meta"))
    assert result.code != 0 and "Traceback" in result.stderr


def test_bad_regex_is_a_usage_error(cli: Cli) -> None:
    result = cli("nodes", str(_meta()), "--match", "(")
    assert result.code == 2 and "Traceback" not in result.stderr
