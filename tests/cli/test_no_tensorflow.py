"""The core never imports TensorFlow: every command runs as if TensorFlow were not installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from helpers.paths import ROOT, SAMPLES

#: a child process that forbids tensorflow imports, runs each command, and reports
RUNNER = textwrap.dedent("""
    import importlib.abc, sys
    attempts = {}
    current = ["start-up"]
    class Block(importlib.abc.MetaPathFinder):
        # as if TensorFlow were not installed: every lookup finds nothing (and is recorded)
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                attempts.setdefault(current[0], []).append(name)
            return None
    sys.meta_path.insert(0, Block())
    from metainspect.cli import app
    failures = []
    for args in COMMANDS:
        current[0] = args[0]
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


def _commands(out: str) -> list[list[str]]:
    meta = str(next((SAMPLES / "mlp").glob("*.meta")))
    ckpt = str(SAMPLES / "mlp")
    saved = str(SAMPLES / "savedmodel_tf2")
    commands = [[c, meta, "--json"] for c in ("nodes", "placeholders", "variables", "collections", "signatures", "ops", "info")]
    commands += [["info", saved], ["signatures", saved], ["vars", ckpt, "--stats", "--json"], ["verify", ckpt]]
    commands += [["objects", str(SAMPLES / "savedmodel_tf2")]]
    # pre-flight, repair and export (the export's default engine without TF is the pure one)
    unambiguous = str(SAMPLES / "check" / "io_unambiguous" / "model.meta")
    commands += [["check", ckpt, "--json"], ["check", str(SAMPLES / "savedmodel_tf1")],
                 ["edit", meta, "-o", f"{out}/edited.meta", "--clear-devices", "--strip-training"],
                 ["rewrite", ckpt, "-o", f"{out}/slim", "--drop-optimizer"],
                 ["export", unambiguous, "--out", f"{out}/export", "--frozen", f"{out}/frozen.pb"]]
    return commands


def test_no_command_imports_tensorflow(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = f"COMMANDS = {_commands(str(tmp_path))!r}\n" + RUNNER
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    attempts, loaded, failures = eval(proc.stdout.strip().splitlines()[-1])
    # only export looks for TensorFlow (to pick its engine); nothing ever loads it
    assert attempts == {"export": ["tensorflow"]} and loaded == []
    assert failures == []
    assert (tmp_path / "export" / "saved_model.pb").exists() and (tmp_path / "frozen.pb").exists()
    assert (tmp_path / "slim.index").exists() and (tmp_path / "edited.meta").exists()
