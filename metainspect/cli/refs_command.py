"""The ``refs`` command: a reference index that lets zarr, xarray and Dask read a checkpoint in place."""

import json as json_module
import sys
from typing import Annotated

import typer

from metainspect.cli.app import app
from metainspect.cli.checkpoint_commands import _open
from metainspect.cli.options import CkptArg, JsonOpt
from metainspect.cli.render import emit_json, emit_lines


@app.command("refs")
def refs(
    path: CkptArg,
    out: Annotated[str, typer.Option("-o", "--output", metavar="FILE",
                                     help="Where to write the JSON (a path, a URL, or - for stdout).")],
    json: JsonOpt = False,
) -> None:
    """Write a reference index: each tensor as a zarr array over its bytes.

    fsspec ReferenceFileSystem JSON (what kerchunk writes): zarr, xarray and
    dask.array.from_zarr then read the tensors where the data shards live,
    without metainspect or TensorFlow. Strings, variants and irregular
    partitions are listed under "skipped" (docs/remote.md).

    JSON: {output, arrays, skipped: {name: reason}}.
    """
    from metainspect.checkpoint.refs import reference_index
    from metainspect.formats.atomic import write_bytes
    from metainspect.formats.filesystem import filesystem, is_url, staged_output

    with _open(path) as ckpt:
        index = reference_index(ckpt)
    data = json_module.dumps(index, indent=1).encode("utf-8")
    arrays = sum(1 for key in index["refs"] if key.endswith("/.zarray"))
    if out == "-":
        sys.stdout.write(data.decode("utf-8") + "\n")
        return
    if is_url(out) and filesystem(out).exists(out):
        from metainspect.errors import MetainspectError

        raise MetainspectError(out, "already exists; refusing to overwrite (choose a new output)")
    with staged_output(out) as local:
        write_bytes(local, data)
    summary = {"output": out, "arrays": arrays, "skipped": index["skipped"]}
    if json:
        emit_json(summary)
        return
    lines = [f"wrote {out}: {arrays} arrays over {len(index['templates'])} data file(s)"]
    lines += [f"skipped {name}: {reason}" for name, reason in index["skipped"].items()]
    emit_lines(lines)
