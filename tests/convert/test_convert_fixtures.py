"""The BERT- and T5-style samples: optimizer state recognised by name (adam_m/adam_v, Adafactor
slots), bfloat16 kept, the 8-byte shard read."""

from __future__ import annotations

import json
from pathlib import Path

from metainspect.convert import ConvertOptions, convert, plan_conversion

from helpers.paths import SAMPLES


def test_bert_drop_optimizer_keeps_the_model() -> None:
    plan = plan_conversion(str(SAMPLES / "convert" / "bert"), None, ConvertOptions(to="safetensors",
                                                                                   drop_optimizer=True))
    assert {t.name for t in plan.dropped} == {t.name for t in plan.tensors if t.name.endswith(("/adam_m", "/adam_v"))}
    assert len(plan.dropped) == 92 and len(plan.kept) == 47
    step = next(t for t in plan.tensors if t.name == "global_step")
    assert step.role == "bookkeeping" and not step.dropped


def test_t5_drop_optimizer_and_bfloat16(tmp_path: Path) -> None:
    plan = convert(str(SAMPLES / "convert" / "t5"), str(tmp_path / "t5.safetensors"),
                   ConvertOptions(drop_optimizer=True))
    golden = json.loads((SAMPLES / "convert" / "t5" / "golden.json").read_text())
    slots = {name for name, _ in golden["variables"] if name.endswith(("_slot_vr", "_slot_vc", "_slot_v"))}
    assert {t.name for t in plan.dropped} == slots and len(slots) == 92
    weights = [t for t in plan.kept if t.name != "global_step"]
    assert len(weights) == len(golden["variables"]) - len(slots) - 1 == 52 and {t.stored_dtype for t in weights} == {"BF16"}
    assert {t.role for t in plan.dropped} == {"optimizer"}
    assert golden["num_shards"] == 3 and (SAMPLES / "convert" / "t5" / "model.ckpt-10.data-00002-of-00003").stat().st_size == 8
    step = next(t for t in plan.kept if t.name == "global_step")
    assert step.stored_dtype == "I64" and step.nbytes == 8
