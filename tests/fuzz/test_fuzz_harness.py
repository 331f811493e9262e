"""The fuzz harness itself: reproducible inputs, honest table re-encoding, classification under limits."""

from __future__ import annotations

import copy
import random
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from metainspect import open_checkpoint
from metainspect.formats.table import Table
from tools.fuzz import tables
from tools.fuzz.case import Case
from tools.fuzz.families import FAMILIES
from tools.fuzz.runner import FINDINGS, Worker, fuzz_family, rng_for, save_case

from helpers.paths import SAMPLES


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_an_input_depends_on_seed_family_and_index_only(name: str) -> None:
    first = [FAMILIES[name]().generate(rng_for("s", name, i))[0] for i in range(6)]
    again = [FAMILIES[name]().generate(rng_for("s", name, i))[0] for i in range(5, -1, -1)][::-1]
    assert [(c.files, c.entry, c.links, c.steps) for c in first] == [(c.files, c.entry, c.links, c.steps) for c in again]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_most_inputs_differ_from_their_seed(name: str) -> None:
    family = FAMILIES[name]()
    seeds = {seed.name: seed for seed in family.seeds()}
    cases = [family.generate(rng_for("s", name, i))[0] for i in range(40)]
    changed = [c for c in cases if c.files != seeds[c.seed].files or c.entry != seeds[c.seed].entry or c.links]
    assert len(changed) >= 30


def test_a_table_rebuilt_without_lies_reads_back_entry_for_entry() -> None:
    data = (SAMPLES / "mlp" / "model.ckpt-3.index").read_bytes()
    entries = tables.read_entries(data, "seed")
    for layout in (tables.Layout(), tables.Layout(per_block=3, restart_interval=2, compression={0: 1, 2: 1})):
        rebuilt = tables.encode(entries, layout, random.Random(0))
        table = Table(rebuilt, "rebuilt")
        assert [(bytes(k), bytes(v)) for k, v in table] == entries
        table.close()


def test_a_repartitioned_tensor_reads_back_the_seed_values(tmp_path: Path) -> None:
    """The slices family's valid mutation is valid: new cuts, same values, every checksum right."""
    family = FAMILIES["slices"]()
    model = family.decode(family.seeds()[0])
    repartition = dict((fn.__name__, fn) for _, fn in family.mutations())["repartition"]
    cuts = set()
    for i in range(12):
        rng = random.Random(i)
        changed = copy.deepcopy(model)
        cuts.add(repartition(rng, changed))
        for name, data in family.render(changed, rng).items():
            (tmp_path / name).write_bytes(data)
        with open_checkpoint(tmp_path / changed.prefix) as ckpt:
            for key, values in changed.values.items():
                np.testing.assert_array_equal(ckpt.get(key.decode()), values)
            assert ckpt.verify() == []
    assert len(cuts) > 2


def test_a_saved_case_reads_back(tmp_path: Path) -> None:
    case = Case("state", "mlp", {"checkpoint": b'model_checkpoint_path: "{root}/x"\n', "sub/a": b"\x00"},
                ".", {"loop": "loop"}, ["recorded"])
    path = save_case(case, {"kind": "crash", "class": "ValueError in x.py:f", "message": "m"}, tmp_path)
    again, found = Case.from_zip(path)
    assert (again.files, again.entry, again.links, again.steps) == (case.files, case.entry, case.links, case.steps)
    assert found == {"kind": "crash", "class": "ValueError in x.py:f", "message": "m"}
    root = tmp_path / "written"
    again.write(root)
    assert (root / "checkpoint").read_bytes() == f'model_checkpoint_path: "{root}/x"\n'.encode()
    assert (root / "loop").is_symlink()


PROBE = '''
    import os
    import signal
    import time

    import numpy as np

    from metainspect.errors import CorruptError
    from metainspect.formats import dtypes
    from tools.fuzz.targets import Errors


    def probe(path):
        action = (path / "action").read_text() if (path / "action").exists() else "ok"
        errors = Errors()
        if action == "error":
            errors.call(lambda: (_ for _ in ()).throw(CorruptError(path, "bad")))
        elif action == "unnamed":
            errors.append(CorruptError(None, "bad"))
        elif action == "multiline":
            errors.append(CorruptError(path, "bad\\nworse"))
        elif action == "crash":
            dtypes.from_name("no such dtype")
        elif action == "alloc":
            np.ones(2**40, dtype=np.uint8)
        elif action == "hang":
            time.sleep(600)
        elif action == "die":
            os.kill(os.getpid(), signal.SIGSEGV)
        return errors


    TARGETS = {"probe": probe}
'''


@pytest.fixture(scope="module")
def probe_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    directory = tmp_path_factory.mktemp("probe")
    (directory / "probe_targets.py").write_text(textwrap.dedent(PROBE))
    worker = Worker(memory_mb=256, targets="probe_targets", env={"PYTHONPATH": str(directory)})
    yield worker
    worker.close()


@pytest.mark.parametrize(("action", "kind", "where"), [
    ("ok", "ok", None),
    ("error", "error", None),
    ("unnamed", "unnamed", "CorruptError without a path"),
    ("multiline", "multiline", "CorruptError over several lines"),
    ("crash", "crash", "ValueError in metainspect/formats/dtypes.py:from_name"),
    ("alloc", "alloc", "MemoryError in numeric.py:ones"),  # no metainspect frame: the innermost one
    ("hang", "hang", "hang in probe_targets.py:probe"),
    ("die", "died", "worker died (signal 11) in probe_targets.py:probe"),
])
def test_the_worker_classifies_what_an_input_does(probe_worker: Worker, action: str, kind: str,
                                                  where: str | None) -> None:
    result = probe_worker.run(Case("probe", "probe", {"action": action.encode()}, "."), ("probe",), timeout=3)
    assert result["kind"] == kind
    assert result.get("class") == where
    assert (kind in FINDINGS) == (where is not None)


def test_the_worker_answers_after_a_hang_and_a_death(probe_worker: Worker) -> None:
    for action in ("hang", "die", "ok"):
        result = probe_worker.run(Case("probe", "probe", {"action": action.encode()}, "."), ("probe",), timeout=3)
    assert result["kind"] == "ok"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_short_run_of_each_family_finds_nothing(name: str, tmp_path: Path) -> None:
    """A smoke run of the real targets: 40 inputs, none a finding; most get past opening the file."""
    worker = Worker()
    try:
        report = fuzz_family(FAMILIES[name](), worker, seed="suite", inputs=40, timeout=20, save=tmp_path)
    finally:
        worker.close()
    assert report.inputs == 40 and not report.generator_failures
    assert not report.classes, "\n".join(f"{c}: {saved}" for c, (_, saved) in report.classes.items())
    assert report.opened >= (5 if name == "text" else 15)
