"""Start-up pays only for what a command uses: listing commands load neither numpy, rich nor ml_dtypes.

Each command runs in a fresh interpreter (stdout piped, as in a script), then the child prints
which of those modules it loaded. The fast JSON writers of ``nodes`` and ``vars`` are checked
byte for byte against the plain ``json.dumps`` the other commands use.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.cli import Cli
from helpers.paths import SAMPLES

HEAVY = ("numpy", "rich", "ml_dtypes")
#: run ARGS through the console-script entry point, then print the heavy modules loaded
CHILD = f"""
import sys
args = sys.argv[1:]
sys.argv = ["metainspect", *args]
from metainspect.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stdout.flush()
sys.stderr.write(repr((code, sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r}))) + "\\n")
"""

LISTINGS = [
    ["vars", "mlp"], ["vars", "ckpt_tf2"], ["vars", "ckpt_tf2_slots"], ["vars", "ckpt_v1"],
    ["vars", "ckpt_partitioned"], ["vars", "savedmodel_tf2"],
    ["nodes", "mlp"], ["nodes", "savedmodel_tf1"], ["nodes", "control_flow"],
    ["info", "mlp"], ["info", "savedmodel_tf2"], ["info", "savedmodel_tf1"], ["info", "frozen"],
    ["placeholders", "mlp"], ["placeholders", "savedmodel_tf1"],
]


def _loaded(*args: str) -> tuple[int, list[str]]:
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=120)
    code, loaded = eval(proc.stderr.strip().splitlines()[-1])  # the child's own repr, last line
    return code, loaded


@pytest.mark.parametrize("command", LISTINGS, ids=lambda c: " ".join(c))
@pytest.mark.parametrize("json_flag", [True, False], ids=["json", "piped-table"])
def test_listing_commands_load_no_numpy_rich_or_ml_dtypes(command: list[str], json_flag: bool) -> None:
    name, sample = command
    path = SAMPLES / sample
    if name in ("nodes", "info", "placeholders") and sample == "frozen":
        path = path / "frozen.pb"
    code, loaded = _loaded(name, str(path), *(["--json"] if json_flag else []))
    assert code == 0 and loaded == [], (command, code, loaded)


def test_a_value_pulls_numpy_in() -> None:
    """The check above can fail: reading a tensor's values does load numpy."""
    code, loaded = _loaded("show", str(SAMPLES / "mlp"), "dense1/bias", "--json")
    assert code == 0 and "numpy" in loaded


def test_command_annotations_are_objects_not_strings() -> None:
    """typer evaluates string annotations of every command at each start: command modules avoid them."""
    import metainspect.cli
    from metainspect.cli.app import app

    modules = {sys.modules[info.callback.__module__] for info in app.registered_commands if info.callback}
    assert metainspect.cli.check_command in modules and len(modules) >= 6
    for module in modules:
        assert not hasattr(module, "annotations"), f"{module.__name__}: from __future__ import annotations"


def test_importing_the_package_loads_no_layer() -> None:
    code = ("import sys, metainspect; "
            "print(sorted(m for m in sys.modules if m.startswith(('google', 'numpy', 'metainspect.', 'typer'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['metainspect.errors']"


@pytest.mark.parametrize("sample", ["mlp", "control_flow", "functions", "savedmodel_tf1", "savedmodel_tf2"])
def test_nodes_json_rows_are_what_json_dumps_writes(sample: str, cli: Cli) -> None:
    from metainspect.graph.model import load_model

    text = cli("nodes", str(SAMPLES / sample), "--json").stdout
    rows = [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "control_inputs": list(n.control_inputs),
             "device": n.device} for n in load_model(SAMPLES / sample).nodes()]
    assert text == json.dumps(rows, ensure_ascii=False) + "\n"
    assert any(row["control_inputs"] for row in rows) or sample != "control_flow"  # both branches exercised


def test_node_rows_escape_like_json_dumps() -> None:
    from metainspect.cli.graph_commands import _node_rows
    from metainspect.graph.model import Node

    odd = ['quote"d', "back\\slash", "tab\tnew\nline", "ünïcødé/☃", "\x00ctl", ""]
    nodes = [Node(name, op, (name, "x:1"), (name,), op, None) for name, op in zip(odd, reversed(odd))]  # type: ignore[arg-type]
    rows = [{"name": n.name, "op": n.op, "inputs": list(n.inputs), "control_inputs": list(n.control_inputs),
             "device": n.device} for n in nodes]
    assert "[" + ", ".join(_node_rows(nodes)) + "]" == json.dumps(rows, ensure_ascii=False)


@pytest.mark.parametrize("sample", ["mlp", "ckpt_tf2_slots", "ckpt_partitioned", "ckpt_dtypes", "ckpt_v1"])
def test_vars_json_rows_are_what_json_dumps_writes(sample: str, cli: Cli) -> None:
    from metainspect.checkpoint import open_checkpoint
    from metainspect.checkpoint.roles import classify

    text = cli("vars", str(SAMPLES / sample), "--json", "--sort", "size").stdout
    with open_checkpoint(SAMPLES / sample) as ckpt:
        graph = ckpt.object_graph()
        infos = sorted(ckpt.infos(), key=lambda i: -i.nbytes)
        rows = [{"name": i.name, "dtype": i.dtype, "shape": i.shape, "nbytes": i.nbytes, "stored_nbytes": i.stored_nbytes,
                 "role": classify(i.name, graph), "partitioned": i.partitioned} for i in infos]
    assert text == json.dumps(rows, ensure_ascii=False) + "\n"
