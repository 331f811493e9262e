"""zarr, dask and (when installed) xarray read a checkpoint through `metainspect refs` alone: the
reading runs in a child process that never imports metainspect, locally and over HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from metainspect import open_checkpoint
from metainspect.formats.bundle_writer import BundleWriter

from helpers.bundle import write_big_endian_dtypes
from helpers.cli import Cli
from helpers.paths import SAMPLES
from helpers.servers import HttpFiles

pytest.importorskip("zarr", reason="zarr is not installed: pip install -e '.[test]'")
pytest.importorskip("dask.array", reason="dask is not installed: pip install -e '.[test]'")

#: run in a child process: opens the refs with zarr, reads every array with zarr and dask (and
#: xarray when present), compares with the arrays metainspect saved, and proves metainspect stayed out
READER = textwrap.dedent('''
    import json, sys
    import numpy as np
    import zarr
    import dask.array as da

    refs, expected_dir = sys.argv[1], sys.argv[2]
    expected = json.load(open(expected_dir + "/names.json"))
    # the recipe the README gives: zarr 3 reads through asynchronous filesystems
    options = {"fo": refs, "remote_options": {"asynchronous": True}}
    root = zarr.open_group("reference://", storage_options=options, mode="r")
    paths = root.attrs["tf_tensors"]
    assert sorted(paths) == sorted(expected), (sorted(paths), sorted(expected))
    for name, number in expected.items():
        want = np.load(f"{expected_dir}/{number}.npy")
        array = root[paths[name]]
        assert array.attrs["tf_name"] == name
        got = array[...]
        if array.attrs.get("raw"):  # bfloat16, float8...: raw unsigned integers, viewed with ml_dtypes
            import ml_dtypes

            assert got.dtype.kind == "u" and got.dtype.itemsize == want.dtype.itemsize, name
            typed = got.astype(got.dtype.newbyteorder("=")).view(getattr(ml_dtypes, array.attrs["tf_dtype"]))
            assert typed.dtype.itemsize == got.dtype.itemsize
        native = got.astype(got.dtype.newbyteorder("="))  # big-endian bundles give big-endian arrays
        assert native.shape == want.shape and native.dtype == want.dtype, (name, native.dtype, want.dtype)
        assert native.tobytes() == want.tobytes(), name  # bit for bit (NaN payloads included)
        lazy = da.from_zarr(array)
        assert lazy.compute().tobytes() == array[...].tobytes(), name
    try:
        import xarray
    except ImportError:
        xarray = None
    if xarray is not None:
        for name, path in paths.items():
            group, _, leaf = path.rpartition("/")
            dataset = xarray.open_zarr("reference://", storage_options=options, group=group or None,
                                       consolidated=True, zarr_format=2)
            direct = root[path][...]
            native = direct.dtype.newbyteorder("=")
            assert dataset[leaf].values.astype(native).tobytes() == direct.astype(native).tobytes(), name
    assert not [m for m in sys.modules if m.split(".")[0] == "metainspect"], "metainspect was imported"
    print(len(expected), "arrays")
''')


def _expected(ckpt_path: Path | str, directory: Path) -> int:
    """Save every tensor the refs hold as metainspect reads it; return how many."""
    directory.mkdir()
    names = {}
    with open_checkpoint(ckpt_path) as ckpt:
        from metainspect.checkpoint.refs import reference_index

        skipped = reference_index(ckpt)["skipped"]
        for number, name in enumerate(n for n in ckpt.keys() if n not in skipped):
            value = np.asarray(ckpt.get(name))
            if value.dtype.kind == "V" or value.dtype.type.__module__ == "ml_dtypes":  # saved as its raw bits
                value = value.view(f"u{value.dtype.itemsize}")
            np.save(directory / f"{number}.npy", value)
            names[name] = number
    (directory / "names.json").write_text(json.dumps(names))
    return len(names)


def _read_elsewhere(refs: Path, expected: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", READER, str(refs), str(expected)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _naming_checkpoint(prefix: Path) -> Path:
    """Names zarr cannot take as they are, a regular 2x2 grid of slices, an empty tensor, a scalar."""
    rng = np.random.default_rng(1)
    grid = rng.standard_normal((4, 6)).astype(np.float32)
    with BundleWriter(prefix) as writer:
        writer.add("w", rng.standard_normal((2, 3)).astype(np.float32))
        writer.add("w/adam_m", rng.standard_normal((2, 3)).astype(np.float32))
        writer.add("net/.ATTRIBUTES/VARIABLE_VALUE", np.arange(5, dtype=np.int64))
        writer.add("__private/step", np.array(7, dtype=np.int32))
        writer.add("with space/é", np.array([True, False]))
        writer.add("empty", np.zeros((0, 3), np.float16))
        writer.add("half", rng.standard_normal(3).astype(np.float16))
        for row in (0, 2):
            for col in (0, 3):
                writer.add_slice("grid", (4, 6), [(row, 2), (col, 3)], grid[row : row + 2, col : col + 3])
    return prefix


@pytest.mark.parametrize("sample", ["ckpt_dtypes", "ckpt_partitioned", "ckpt_tf2_slots", "savedmodel_tf2",
                                    "ckpt_tf1_sharded"])
def test_zarr_and_dask_read_the_samples_without_metainspect(cli: Cli, tmp_path: Path, sample: str) -> None:
    count = _expected(SAMPLES / sample, tmp_path / "expected")
    refs = tmp_path / "refs.json"
    assert cli("refs", str(SAMPLES / sample), "-o", str(refs)).code == 0
    assert _read_elsewhere(refs, tmp_path / "expected").split() == [str(count), "arrays"]


def test_escaped_names_grids_empty_and_big_endian_tensors(cli: Cli, tmp_path: Path) -> None:
    for label, prefix in (("names", _naming_checkpoint(tmp_path / "names" / "model.ckpt")),
                          ("big", write_big_endian_dtypes(tmp_path / "big"))):
        count = _expected(prefix, tmp_path / f"{label}-expected")
        refs = tmp_path / f"{label}.json"
        assert cli("refs", str(prefix), "-o", str(refs)).code == 0
        _read_elsewhere(refs, tmp_path / f"{label}-expected")
        assert count >= 8


def test_refs_of_a_checkpoint_served_over_http_read_through_http(cli: Cli, tmp_path: Path) -> None:
    count = _expected(SAMPLES / "ckpt_partitioned", tmp_path / "expected")
    refs = tmp_path / "refs.json"
    with HttpFiles(SAMPLES) as server:
        assert cli("refs", f"{server.url}/ckpt_partitioned", "-o", str(refs)).code == 0
        assert json.loads(refs.read_text())["templates"]["d0"].startswith(server.url)
        server.reset()
        _read_elsewhere(refs, tmp_path / "expected")
        gets = [entry for entry in server.served.log if entry[0] == "GET" and ".data-" in entry[1]]
    assert count == 2
    # every chunk is a byte range of the data file: zarr never fetched it whole
    largest = max(int(end) - int(start) + 1 for start, end in (g[2].removeprefix("bytes=").split("-") for g in gets))
    assert gets and all(g[2].startswith("bytes=") for g in gets) and largest <= 2 * 5 * 8  # a min_max chunk: 2x5 int64
