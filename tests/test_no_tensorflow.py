"""The core never imports TensorFlow: every command runs with `tensorflow` made unimportable."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import ROOT, SAMPLES

#: a child process that forbids tensorflow imports, runs each command, and reports
RUNNER = textwrap.dedent("""
    import importlib.abc, sys
    attempts = []
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                attempts.append(name)
                raise ImportError("tensorflow is blocked in this test")
            return None
    sys.meta_path.insert(0, Block())
    from metainspect.cli import app
    failures = []
    for args in COMMANDS:
        try:
            app(args, standalone_mode=False)
        except SystemExit as exc:
            if exc.code not in (0, None):
                failures.append((args, exc.code))
        except Exception as exc:
            failures.append((args, repr(exc)))
    loaded = sorted(m for m in sys.modules if m == "tensorflow" or m.startswith("tensorflow."))
    print(repr((attempts, loaded, failures)))
""")


def _commands() -> list[list[str]]:
    meta = str(next((SAMPLES / "mlp").glob("*.meta")))
    ckpt = str(SAMPLES / "mlp")
    saved = str(SAMPLES / "savedmodel_tf2")
    commands = [[c, meta, "--json"] for c in ("nodes", "placeholders", "variables", "collections", "signatures", "ops", "info")]
    commands += [["info", saved], ["signatures", saved], ["vars", ckpt, "--stats", "--json"], ["verify", ckpt]]
    commands += [["objects", str(SAMPLES / "savedmodel_tf2")]]
    return commands


def test_no_command_imports_tensorflow() -> None:
    script = f"COMMANDS = {_commands()!r}\n" + RUNNER
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    attempts, loaded, failures = eval(proc.stdout.strip().splitlines()[-1])
    assert attempts == [] and loaded == []
    assert failures == []
