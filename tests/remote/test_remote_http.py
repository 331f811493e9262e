"""Reading over HTTP from a real server on loopback: the same answers as local reads, within byte
budgets, and one clear line for every way a server can fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers.cli import Cli
from helpers.paths import SAMPLES
from helpers.servers import HttpFiles, closed_port

#: (command, sample path, extra args): every reading command, on every kind of input
SAME_ANSWERS = [
    ("vars", "ckpt_tf2", ()),
    ("vars", "ckpt_tf2/ckpt-1", ()),
    ("vars", "ckpt_tf2/ckpt-1.index", ()),
    ("vars", "ckpt_tf2/ckpt-1.data-00000-of-00001", ()),
    ("vars", "ckpt_v1_sharded/", ()),
    ("vars", "ckpt_v1_sharded/model.ckpt-00001-of-00003", ()),
    ("vars", "ckpt_v1", ()),
    ("vars", "ckpt_partitioned", ()),
    ("vars", "savedmodel_tf2", ()),
    ("vars", "ckpt_tf1_sharded", ()),
    ("show", "ckpt_dtypes", ("dt_bfloat16",)),
    ("show", "ckpt_dtypes", ("str_2d",)),
    ("show", "ckpt_partitioned", ("rows",)),
    ("show", "ckpt_v1_sharded/", ("emb",)),
    ("verify", "ckpt_dtypes", ()),
    ("verify", "ckpt_tf1_sharded", ()),
    ("objects", "ckpt_tf2_slots", ()),
    ("nodes", "mlp", ()),
    ("nodes", "savedmodel_tf1", ()),
    ("info", "savedmodel_tf2", ()),
    ("info", "ckpt_v1_sharded/model.ckpt", ()),
    ("check", "mlp", ()),
    ("check", "savedmodel_tf1", ()),
]


def _local_and_remote(cli: Cli, server: HttpFiles, command: str, sample: str, extra: tuple[str, ...]) -> tuple[str, str]:
    local = cli(command, str(SAMPLES / sample), *extra, "--json")
    remote = cli(command, f"{server.url}/{sample}", *extra, "--json")
    assert (local.code, remote.code) == (local.code, local.code), remote.stderr
    assert local.code in (0, 1), local.stderr
    # the only differences allowed: where the files are
    return local.stdout.replace(str(SAMPLES), "ROOT"), remote.stdout.replace(server.url, "ROOT")


@pytest.mark.parametrize(("command", "sample", "extra"), SAME_ANSWERS, ids=[f"{c}-{s}" for c, s, _ in SAME_ANSWERS])
def test_every_reading_command_answers_as_for_local_files(cli: Cli, samples_http: HttpFiles, command: str, sample: str,
                                                          extra: tuple[str, ...]) -> None:
    local, remote = _local_and_remote(cli, samples_http, command, sample, extra)
    assert json.loads(remote) == json.loads(local)


def test_a_state_file_recording_a_foreign_absolute_path_resolves_beside_it(cli: Cli, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    for name in ("ckpt-2.index", "ckpt-2.data-00000-of-00001"):
        (run / name).write_bytes((SAMPLES / "ckpt_tf2" / name).read_bytes())
    (run / "checkpoint").write_text('model_checkpoint_path: "/data/jobs/77/run/ckpt-2"\n')
    with HttpFiles(tmp_path) as server:
        result = cli("vars", f"{server.url}/run/", "--json")
    assert result.code == 0, result.stderr
    assert "absolute path from another machine" in result.stderr and f"{server.url}/run/ckpt-2" not in result.stderr
    assert result.json() == cli("vars", str(run), "--json").json()


def test_listing_20000_tensors_reads_the_index_and_nothing_else(cli: Cli, big_checkpoints: Path) -> None:
    index = big_checkpoints / "many" / "model.ckpt.index"
    with HttpFiles(big_checkpoints) as server:
        result = cli("vars", f"{server.url}/many/model.ckpt", "--json")
        served = server.served
    assert result.code == 0, result.stderr
    assert len(result.json()) == 20_000
    assert result.json() == cli("vars", str(big_checkpoints / "many" / "model.ckpt"), "--json").json()
    assert served.bytes <= index.stat().st_size + 128 * 1024
    assert served.by_path.get("/many/model.ckpt.data-00000-of-00001", [0, 0])[1] == 0  # no TF2 object graph to read
    assert served.requests <= 4, served.log


def test_one_tensor_costs_its_byte_range_not_the_data_file(cli: Cli, big_checkpoints: Path) -> None:
    data = big_checkpoints / "one" / "model.ckpt.data-00000-of-00001"
    index = big_checkpoints / "one" / "model.ckpt.index"
    assert 1_300_000 <= data.stat().st_size <= 1_400_000
    with HttpFiles(big_checkpoints) as server:
        result = cli("show", f"{server.url}/one/model.ckpt", "target", "--json", "--full")
        served = server.served
    assert result.code == 0, result.stderr
    assert result.json() == cli("show", str(big_checkpoints / "one" / "model.ckpt"), "target", "--json", "--full").json()
    assert served.bytes <= index.stat().st_size + 32 * 1024 + 256 * 1024
    data_bytes = served.by_path["/one/model.ckpt.data-00000-of-00001"][1]
    assert 32 * 1024 <= data_bytes <= 32 * 1024 + 64 * 1024  # the tensor and at most the read-ahead


def test_verbose_reports_what_the_server_counted(cli: Cli, samples_http: HttpFiles) -> None:
    result = cli("show", "-v", f"{samples_http.url}/ckpt_tf2", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")
    assert result.code == 0, result.stderr
    summary = next(line for line in result.stderr.splitlines() if line.startswith("metainspect: transfer:"))
    served = samples_http.served
    assert f"{served.requests} requests" in summary and f"({served.bytes} bytes)" in summary
    index = (SAMPLES / "ckpt_tf2" / "ckpt-2.index").stat().st_size
    assert f"/ckpt_tf2/ckpt-2.index: 2 requests, {index} B of {index} B" in result.stderr


def test_local_commands_never_import_fsspec() -> None:
    code = ("import sys\nfrom metainspect.cli import run\n"
            "try:\n    run(['vars', sys.argv[1], '--json'])\nexcept SystemExit as exc:\n    assert exc.code in (0, None)\n"
            "loaded = [m for m in ('fsspec', 'aiohttp', 'metainspect.formats.remote') if m in sys.modules]\n"
            "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", code, str(SAMPLES / "ckpt_tf2")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_without_the_extra_a_url_says_what_to_install() -> None:
    code = ("import sys\nsys.modules['fsspec'] = None  # as if not installed\nfrom metainspect.cli import run\n"
            "run(['vars', sys.argv[1]])\n")
    proc = subprocess.run([sys.executable, "-c", code, "s3://bucket/run/model.ckpt"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("metainspect: s3://bucket/run/model.ckpt: reading s3:// URLs needs the remote extra")
    assert "pip install 'metainspect[remote]'" in proc.stderr


# -- servers that fail -----------------------------------------------------------------------------
def _one_line_exit_2(result: object, url: str) -> str:
    code, stderr = result.code, result.stderr  # type: ignore[attr-defined]
    assert code == 2, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr, stderr
    assert stderr.startswith(f"metainspect: {url}"), stderr
    return str(stderr)


def test_an_unreachable_host_is_one_line_after_bounded_retries(cli: Cli) -> None:
    url = f"http://127.0.0.1:{closed_port()}/run/model.ckpt"
    message = _one_line_exit_2(cli("vars", url), url)
    assert "cannot connect" in message and "gave up after 3 attempts" in message


@pytest.mark.parametrize(("mode", "words"), [("forbidden", "access denied (HTTP 403)"),
                                             ("missing", "no checkpoint here")])
def test_403_and_404_name_the_url(cli: Cli, samples_http: HttpFiles, mode: str, words: str) -> None:
    samples_http.mode = mode  # type: ignore[assignment]
    url = f"{samples_http.url}/ckpt_tf2/ckpt-1"
    message = _one_line_exit_2(cli("vars", url), url)
    assert words in message
    assert all(requests == 1 for requests, _ in samples_http.served.by_path.values())  # 4xx: no retry


def test_a_server_ignoring_range_is_refused_without_downloading(cli: Cli, big_checkpoints: Path) -> None:
    with HttpFiles(big_checkpoints) as server:
        server.mode = "norange"
        url = f"{server.url}/one/model.ckpt.data-00000-of-00001"
        result = cli("show", "-v", f"{server.url}/one/model.ckpt", "target")
    assert result.code == 2 and "Traceback" not in result.stderr
    *transfer, error = result.stderr.splitlines()  # -v reports the transfer, then the error line
    assert error.startswith(f"metainspect: {url}: the server ignores HTTP Range requests")
    # the index fits in one whole read (no range needed); of the data file, nothing was received
    assert any(line.startswith(f"  {url}: ") and ", 0 B of " in line for line in transfer), transfer


def test_whole_small_files_need_no_range_support(cli: Cli, samples_http: HttpFiles) -> None:
    samples_http.mode = "norange"
    result = cli("info", f"{samples_http.url}/savedmodel_tf2", "--json")
    assert result.code == 0, result.stderr
    assert result.json()["kind"] == "saved_model"


def test_an_object_changing_size_between_reads(cli: Cli, samples_http: HttpFiles) -> None:
    samples_http.mode = "changing"
    url = f"{samples_http.url}/ckpt_tf2/ckpt-1.index"
    message = _one_line_exit_2(cli("vars", f"{samples_http.url}/ckpt_tf2/ckpt-1"), url)
    assert "changed while being read" in message


def test_a_truncated_response_is_retried_three_times_then_named(cli: Cli, samples_http: HttpFiles) -> None:
    samples_http.mode = "truncating"
    url = f"{samples_http.url}/ckpt_tf2/ckpt-1.index"
    message = _one_line_exit_2(cli("vars", f"{samples_http.url}/ckpt_tf2/ckpt-1"), url)
    assert "gave up after 3 attempts" in message
    gets = [entry for entry in samples_http.served.log if entry[0] == "GET" and entry[1] == "/ckpt_tf2/ckpt-1.index"]
    assert len(gets) == 3


def test_a_short_body_is_a_truncated_object(cli: Cli, samples_http: HttpFiles, tmp_path: Path) -> None:
    samples_http.mode = "short"
    url = f"{samples_http.url}/ckpt_tf2/ckpt-1.index"
    out = tmp_path / "out" / "model.ckpt"
    message = _one_line_exit_2(cli("rewrite", f"{samples_http.url}/ckpt_tf2/ckpt-1", "-o", str(out)), url)
    assert "truncated" in message
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")  # nothing written


def test_convert_from_safetensors_over_http(cli: Cli, tmp_path: Path) -> None:
    """A .safetensors file and a Hugging Face sharded index behind URLs convert as local ones do,
    reading the header and then each tensor's range."""
    import numpy as np

    from metainspect.checkpoint import open_checkpoint

    local = tmp_path / "files"
    tensors = {f"layer_{i}/kernel": np.arange(i * 1000, i * 1000 + 4096, dtype=np.float32) for i in range(4)}
    assert cli("convert", str(_write_checkpoint(tmp_path / "ckpt" / "model.ckpt", tensors)), "-o",
               str(local / "model.safetensors")).code == 0
    assert cli("convert", str(tmp_path / "ckpt" / "model.ckpt"), "-o", str(local / "sharded") + "/",
               "--to", "safetensors", "--max-shard-size", "20000").code == 0
    with HttpFiles(local) as server:
        for source in ("model.safetensors", "sharded/model.safetensors.index.json"):
            out = tmp_path / "out" / source.replace("/", "_") / "model.ckpt"
            result = cli("convert", f"{server.url}/{source}", "-o", str(out))
            assert result.code == 0, result.stderr
            with open_checkpoint(out) as converted:
                assert sorted(converted) == sorted(tensors)
                for name, value in tensors.items():
                    np.testing.assert_array_equal(converted.get(name), value)
        assert server.served.bytes < 2 * sum((local / n).stat().st_size for n in ("model.safetensors",)) + 200_000
        missing = cli("convert", f"{server.url}/nothing.safetensors", "-o", str(tmp_path / "x" / "m.ckpt"))
    assert missing.code == 2 and "nothing.safetensors" in missing.stderr


def _write_checkpoint(prefix: Path, tensors: dict[str, Any]) -> Path:
    from metainspect.formats.bundle_writer import BundleWriter

    with BundleWriter(str(prefix)) as writer:
        for name, value in tensors.items():
            writer.add(name, value)
    return prefix
