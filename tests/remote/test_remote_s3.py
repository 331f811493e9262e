"""Reading from and writing to S3 through moto's server on loopback: same answers as local reads,
bucket "directories" resolved like local ones, outputs that appear whole or not at all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import Cli
from helpers.paths import SAMPLES
from helpers.servers import HttpFiles, s3_server

pytest.importorskip("s3fs", reason="the remote extra is not installed: pip install -e '.[remote]'")
pytest.importorskip("moto.server", reason="moto's server is not installed: pip install -e '.[test]'")

BUCKET = "models"
UPLOADED = ("ckpt_tf2", "ckpt_v1_sharded", "savedmodel_tf1", "savedmodel_tf2", "mlp", "ckpt_partitioned")


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    """An S3 filesystem on moto's server holding the samples under s3://models/."""
    import s3fs

    with s3_server():
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir(BUCKET)
        for sample in UPLOADED:
            for path in sorted((SAMPLES / sample).rglob("*")):
                if path.is_file() and not path.name.startswith("golden"):
                    fs.put_file(str(path), f"{BUCKET}/{path.relative_to(SAMPLES)}")
        yield fs


def _same(cli: Cli, local: str, remote: str, *args: str) -> dict[str, Any] | list[Any]:
    here = cli(*args[:1], local, *args[1:], "--json")
    there = cli(*args[:1], remote, *args[1:], "--json")
    assert there.code == here.code, there.stderr
    expected = json.loads(here.stdout.replace(str(SAMPLES), "ROOT"))
    got = json.loads(there.stdout.replace(f"s3://{BUCKET}", "ROOT"))
    assert got == expected
    return got  # type: ignore[no-any-return]


@pytest.mark.parametrize(("command", "sample", "extra"), [
    ("vars", "ckpt_tf2", ()),  # a `checkpoint` state file in a bucket "directory"
    ("vars", "ckpt_tf2/ckpt-1.index", ()),
    ("vars", "ckpt_v1_sharded/model.ckpt-?????-of-00003", ()),  # a V1 pattern, globbed by listing
    ("vars", "savedmodel_tf2", ()),
    ("verify", "ckpt_partitioned", ()),
    ("show", "ckpt_partitioned", ("cols",)),
    ("objects", "ckpt_tf2", ()),
    ("info", "savedmodel_tf1", ()),
    ("check", "mlp", ()),
])
def test_s3_reads_answer_as_local_reads(cli: Cli, s3: Any, command: str, sample: str, extra: tuple[str, ...]) -> None:
    _same(cli, str(SAMPLES / sample), f"s3://{BUCKET}/{sample}", command, *extra)


def test_a_bucket_directory_with_one_checkpoint_and_no_state_file_is_scanned(cli: Cli, s3: Any) -> None:
    s3.put_file(str(SAMPLES / "ckpt_tf2" / "ckpt-1.index"), f"{BUCKET}/scan/ckpt-1.index")
    s3.put_file(str(SAMPLES / "ckpt_tf2" / "ckpt-1.data-00000-of-00001"), f"{BUCKET}/scan/ckpt-1.data-00000-of-00001")
    assert cli("vars", f"s3://{BUCKET}/scan", "--json").json() == cli("vars", str(SAMPLES / "ckpt_tf2/ckpt-1"), "--json").json()


def test_graph_and_checkpoint_on_different_stores(cli: Cli, s3: Any) -> None:
    with HttpFiles(SAMPLES) as http:
        remote = cli("check", f"{http.url}/mlp/model.ckpt-3.meta", "-c", f"s3://{BUCKET}/mlp/model.ckpt-3", "--json")
    local = cli("check", str(SAMPLES / "mlp/model.ckpt-3.meta"), "-c", str(SAMPLES / "mlp/model.ckpt-3"), "--json")
    assert remote.code == local.code == 0, remote.stderr
    assert remote.json()["verdict"] == local.json()["verdict"]
    def summary(report: dict[str, Any]) -> list[tuple[str, str, str | None, dict[str, Any]]]:
        return [(f["id"], f["severity"], f["subject"], f["details"]) for f in report["findings"]]

    assert summary(remote.json()) == summary(local.json())
    assert remote.json()["checkpoint"] == f"s3://{BUCKET}/mlp/model.ckpt-3"


def test_storage_options_reach_the_backend(cli: Cli, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    endpoint = os.environ["AWS_ENDPOINT_URL"]
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    url = f"s3://{BUCKET}/ckpt_tf2"
    result = cli("vars", "--storage-option", f"endpoint_url={endpoint}", url, "--json")
    assert result.code == 0, result.stderr
    assert result.json() == cli("vars", str(SAMPLES / "ckpt_tf2"), "--json").json()


def test_the_python_api_takes_urls_and_storage_options(s3: Any) -> None:
    import os

    import numpy as np

    from metainspect.checkpoint import open_checkpoint
    from metainspect.graph.model import load_model

    options = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
    with open_checkpoint(f"s3://{BUCKET}/ckpt_partitioned", storage_options=options) as remote, \
            open_checkpoint(SAMPLES / "ckpt_partitioned") as local:
        assert remote.keys() == local.keys()
        for name in local:
            np.testing.assert_array_equal(remote[name].numpy(), local[name].numpy())
        np.testing.assert_array_equal(remote["rows"][1:3], local["rows"][1:3])
    model = load_model(f"s3://{BUCKET}/savedmodel_tf1", storage_options=options)
    assert [n.name for n in model.nodes()] == [n.name for n in load_model(SAMPLES / "savedmodel_tf1").nodes()]


# -- outputs -----------------------------------------------------------------------------------------
def _objects(s3: Any, prefix: str) -> list[str]:
    s3.invalidate_cache()
    return sorted(s3.find(f"{BUCKET}/{prefix}"))


def test_rewrite_to_s3_uploads_the_same_bytes_index_last(cli: Cli, s3: Any, tmp_path: Path) -> None:
    args = ("--rename", "optimizer=opt", "--drop-optimizer")
    local = cli("rewrite", str(SAMPLES / "ckpt_tf2"), "-o", str(tmp_path / "out" / "model.ckpt"), *args)
    remote = cli("rewrite", f"s3://{BUCKET}/ckpt_tf2", "-o", f"s3://{BUCKET}/rewritten/model.ckpt", *args, "--json")
    assert local.code == remote.code == 0, remote.stderr
    written = remote.json()["written"]
    assert written["index_file"] == f"s3://{BUCKET}/rewritten/model.ckpt.index"
    for name in ("model.ckpt.index", "model.ckpt.data-00000-of-00001"):
        assert s3.cat_file(f"{BUCKET}/rewritten/{name}") == (tmp_path / "out" / name).read_bytes()
    again = cli("rewrite", f"s3://{BUCKET}/ckpt_tf2", "-o", f"s3://{BUCKET}/rewritten/model.ckpt")
    assert again.code == 2 and "already exists" in again.stderr


def test_a_failed_upload_leaves_nothing(cli: Cli, s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from metainspect.formats.filesystem import filesystem

    backend = filesystem(f"s3://{BUCKET}/failed/model.ckpt").fs  # type: ignore[attr-defined]
    real = backend.put_file
    calls = []

    def failing(local: str, remote: str, **kwargs: Any) -> Any:
        calls.append(remote)
        if remote.endswith(".index"):
            raise ConnectionResetError("connection reset by peer")
        return real(local, remote, **kwargs)

    monkeypatch.setattr(backend, "put_file", failing)
    result = cli("rewrite", f"s3://{BUCKET}/ckpt_tf2", "-o", f"s3://{BUCKET}/failed/model.ckpt")
    assert result.code == 2 and result.stderr.count("\n") == 1
    assert "upload failed, nothing left behind" in result.stderr
    assert calls[-1].endswith(".index") and len(calls) == 2  # the data shard went first
    assert _objects(s3, "failed") == []


def test_in_place_is_refused_for_urls(cli: Cli, s3: Any) -> None:
    result = cli("rewrite", f"s3://{BUCKET}/ckpt_tf2", "--in-place", "--drop-optimizer")
    assert result.code == 2 and "cannot be rewritten in place" in result.stderr
    edit = cli("edit", f"s3://{BUCKET}/mlp/model.ckpt-3.meta", "--in-place", "--clear-devices")
    assert edit.code == 2 and "cannot be edited in place" in edit.stderr


def test_edit_export_and_refs_write_to_s3(cli: Cli, s3: Any, tmp_path: Path) -> None:
    edited = cli("edit", f"s3://{BUCKET}/mlp/model.ckpt-3.meta", "--clear-devices", "-o", f"s3://{BUCKET}/edited/m.meta")
    assert edited.code == 0, edited.stderr
    local = cli("edit", str(SAMPLES / "mlp/model.ckpt-3.meta"), "--clear-devices", "-o", str(tmp_path / "m.meta"))
    assert local.code == 0
    assert s3.cat_file(f"{BUCKET}/edited/m.meta") == (tmp_path / "m.meta").read_bytes()

    exported = cli("export", f"s3://{BUCKET}/mlp/model.ckpt-3", "-o", f"s3://{BUCKET}/exported/1", "--engine", "pure",
                   "--json")
    assert exported.code == 0, exported.stderr
    assert exported.json()["saved_model"] == f"s3://{BUCKET}/exported/1"
    names = [name.split("/exported/1/", 1)[1] for name in _objects(s3, "exported/1")]
    assert sorted(names) == ["saved_model.pb", "variables/variables.data-00000-of-00001", "variables/variables.index"]
    assert cli("vars", f"s3://{BUCKET}/exported/1", "--json").json() == cli("vars", str(SAMPLES / "mlp"), "--json").json()

    refs = cli("refs", f"s3://{BUCKET}/ckpt_tf2", "-o", f"s3://{BUCKET}/refs/ckpt_tf2.json", "--json")
    assert refs.code == 0, refs.stderr
    index = json.loads(s3.cat_file(f"{BUCKET}/refs/ckpt_tf2.json"))
    assert index["templates"] == {"d0": f"s3://{BUCKET}/ckpt_tf2/ckpt-2.data-00000-of-00001"}


def test_convert_reads_and_writes_urls(cli: Cli, s3: Any, tmp_path: Path) -> None:
    local = cli("convert", str(SAMPLES / "ckpt_tf2"), "-o", str(tmp_path / "model.safetensors"))
    assert local.code == 0, local.stderr
    from_s3 = cli("convert", f"s3://{BUCKET}/ckpt_tf2", "-o", str(tmp_path / "from_s3.safetensors"))
    assert from_s3.code == 0, from_s3.stderr
    assert (tmp_path / "from_s3.safetensors").read_bytes() == (tmp_path / "model.safetensors").read_bytes()

    to_s3 = cli("convert", str(SAMPLES / "ckpt_tf2"), "-o", f"s3://{BUCKET}/converted/model.safetensors", "--json")
    assert to_s3.code == 0, to_s3.stderr
    assert to_s3.json()["written"]["files"] == [f"s3://{BUCKET}/converted/model.safetensors"]
    assert s3.cat_file(f"{BUCKET}/converted/model.safetensors") == (tmp_path / "model.safetensors").read_bytes()

    # back to a TensorFlow checkpoint in a bucket directory: data, index, then the state file
    back = cli("convert", str(tmp_path / "model.safetensors"), "-o", f"s3://{BUCKET}/back/", "--to", "checkpoint",
               "--json")
    assert back.code == 0, back.stderr
    files = back.json()["written"]["files"]
    assert files[-1] == f"s3://{BUCKET}/back/checkpoint" and files[-2].endswith(".index")
    assert cli("vars", f"s3://{BUCKET}/back", "--json").code == 0


def test_diff_across_stores(cli: Cli, s3: Any) -> None:
    result = cli("diff", f"s3://{BUCKET}/ckpt_tf2/ckpt-2", str(SAMPLES / "ckpt_tf2/ckpt-2"), "--json")
    assert result.code == 0, result.stderr
    assert result.json()["identical"] is True
