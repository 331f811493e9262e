"""The keep/drop/drop-optimizer/rename rules as one reusable function, with structured reasons."""

from __future__ import annotations

import pytest

from metainspect.checkpoint.roles import Role, classify
from metainspect.checkpoint.selection import Dropped, Selected, SelectionError, select
from metainspect.cli.options import dropped_by

NAMES = ["dense/kernel", "dense/kernel/Adam", "dense/bias", "global_step", "head/w"]
ROLES: dict[str, Role] = {name: classify(name) for name in NAMES}


def test_rules_apply_in_order_with_reasons() -> None:
    rows = select(NAMES, ROLES, keep=("^dense|global",), drop=("bias$",), drop_optimizer=True,
                  renames=("dense=net",))
    assert rows == [
        Selected("dense/kernel", "net/kernel", None),
        Selected("dense/kernel/Adam", None, Dropped("drop_optimizer")),
        Selected("dense/bias", None, Dropped("drop", "bias$")),
        Selected("global_step", "global_step", None),
        Selected("head/w", None, Dropped("keep")),
    ]
    assert [dropped_by(r.dropped_by) for r in rows if r.dropped_by] == ["--drop-optimizer", "--drop bias$", "--keep"]
    assert select(NAMES, ROLES) == [Selected(n, n, None) for n in NAMES]


@pytest.mark.parametrize(("options", "rule", "message"), [
    ({"keep": ("nothing",)}, "keep", "'nothing' matches no tensor"),
    ({"drop": ("[",)}, "drop", "bad regular expression"),
    ({"drop": (".",)}, "all", "every tensor would be dropped"),
    ({"renames": ("dense=head",)}, "rename", "'dense/kernel' would become 'head/kernel'|would both become"),
    ({"renames": ("head=x",), "drop": ("^head",)}, "rename", "matches only dropped tensors \\(such as 'head/w'\\)"),
    ({"renames": ("re:^global_step$=",)}, "rename", "would get an empty name"),
    ({"renames": ("nope",)}, "rename", "expected OLD=NEW"),
])
def test_refusals_say_which_rule(options: dict, rule: str, message: str) -> None:  # type: ignore[type-arg]
    names = NAMES + (["head/kernel"] if rule == "rename" and "dense=head" in options.get("renames", ()) else [])
    with pytest.raises(SelectionError, match=message) as caught:
        select(names, {n: classify(n) for n in names}, **options)
    assert caught.value.rule == rule


def test_drop_optimizer_needs_optimizer_state() -> None:
    with pytest.raises(SelectionError, match="no optimizer state") as caught:
        select(["a", "b"], {"a": "model", "b": "bookkeeping"}, drop_optimizer=True)
    assert caught.value.rule == "drop_optimizer"
