"""The library speaks API, the command line speaks flags: one error, two wordings.

Library errors name arguments as the API does and mark that phrase with a Hint; the command line
swaps it for its flags, so users see the lines they always saw (these are compared whole).
"""

from __future__ import annotations

import shutil
import typing
from pathlib import Path

import pytest

from metainspect.cli.options import error_line
from metainspect.errors import Hint, HintTopic, MetainspectError

from helpers.cli import Cli
from helpers.paths import SAMPLES


@pytest.mark.parametrize(("args", "line"), [
    (["rewrite", "{mlp}", "-o", "{out}", "--cast", "float64:float16"],
     "--cast 'float64:float16': no float64 tensor to cast"),
    (["rewrite", "{mlp}", "-o", "{out}", "--cast", "float32:int8"],
     "--cast 'float32:int8': int8 is not a floating-point type; only float tensors can be cast"),
    (["rewrite", "{mlp}", "-o", "{out}", "--keep", "nothing"], "--keep 'nothing' matches no tensor"),
    (["rewrite", "{mlp}", "-o", "{out}", "--rename", "re:Adam_1$=v", "--drop-optimizer"],
     "--rename 're:Adam_1$=v' matches only dropped tensors (such as 'dense1/bias/Adam_1')"),
    (["rewrite", "{samples}/ckpt_v1", "-o", "{out}", "--drop-optimizer"],
     "--drop-optimizer: this checkpoint holds no optimizer state"),
    (["rewrite", "{mlp}", "-o", "{mlp}/model.ckpt-3"],
     "{mlp}/model.ckpt-3: is the input checkpoint; choose another output prefix or use --in-place"),
    (["rewrite", "{mlp}", "-o", "{out}", "--in-place"],
     "{out}: --in-place rewrites the input itself; do not name another output"),
    (["edit", "{meta}", "-o", "{meta}", "--clear-devices"],
     "{meta}: is the input; write elsewhere with -o, or use --in-place (keeps a backup)"),
    (["edit", "{mlp}", "--plan", "--add-signature", "s"],
     "{meta}: signature 's' needs at least one --input and one --output"),
    (["edit", "{samples}/savedmodel_tf1", "--plan", "--add-signature", "serving_default", "--input", "x=x:0",
      "--output", "p=probs:0"],
     "{samples}/savedmodel_tf1/saved_model.pb: signature 'serving_default' exists; remove it first "
     "(--remove-signature serving_default)"),
    (["edit", "{mlp}", "--plan", "--prune-to", "nope"], "{meta}: --prune-to: no node 'nope' in the graph"),
    (["edit", "{mlp}", "--plan", "--rename", "re:^x$=bad name"],
     "{meta}: --rename would name a node 'bad name', which TensorFlow refuses"),
    (["edit", "{samples}/frozen/frozen.pb", "--plan", "--drop-collection", "x"],
     "{samples}/frozen/frozen.pb: --drop-collection: a bare GraphDef has no signatures, tags or collections "
     "(edit a .meta or SavedModel)"),
    (["nodes", "{samples}/ckpt_dtypes/model.ckpt.index"],
     "{samples}/ckpt_dtypes/model.ckpt.index: is a checkpoint, not a graph; use `metainspect vars` (or give the .meta)"),
    (["vars", "{meta}"], "{meta}: is a graph (MetaGraphDef); its checkpoint is {mlp}/model.ckpt-3; "
                         "use `metainspect nodes {meta}` to inspect it"),
    (["export", "{samples}/ckpt_tf2", "--out", "{out}", "--engine", "pure"],
     "{samples}/ckpt_tf2: is a TF2 object-based checkpoint: values without a graph; rebuild the model in Python: "
     "--model-factory module:function --input-spec name:dtype:shape"),
    (["export", "{samples}/ckpt_tf2", "--out", "{out}", "--model-factory", "my:build"],
     "--model-factory needs at least one --input-spec name:dtype:shape"),
    (["show", "{mlp}", "dense1/kernl"], "{mlp}/model.ckpt-3: no tensor 'dense1/kernl'; "
                                        "did you mean 'dense1/kernel', 'dense2/kernel', 'dense1/kernel/Adam'?"),
    (["collections", "{mlp}", "nope"], "{meta}: no collection 'nope' (collections: global_step, my_floats, my_ints, "
                                       "my_outputs, my_strings, summaries, train_op, trainable_variables, variables)"),
    (["nodes", "{samples}/functions", "--function", "nope"],
     "{samples}/functions/functions.meta: no function 'nope' in the graph's library"),
])
def test_errors_read_as_the_command_line_always_wrote_them(args: list[str], line: str, tmp_path: Path,
                                                           cli: Cli) -> None:
    shutil.copytree(SAMPLES / "mlp", tmp_path / "mlp")
    names = {"mlp": str(tmp_path / "mlp"), "meta": str(tmp_path / "mlp" / "model.ckpt-3.meta"),
             "out": str(tmp_path / "out" / "x"), "samples": str(SAMPLES)}
    result = cli(*[a.format(**names) for a in args])
    assert (result.code, result.stderr) == (2, f"metainspect: {line.format(**names)}\n")


def test_the_library_says_the_same_in_api_words() -> None:
    from metainspect.rewrite import RewriteOptions, plan_rewrite

    with pytest.raises(MetainspectError) as refused:
        plan_rewrite(str(SAMPLES / "mlp"), RewriteOptions(keep=("nothing",)))
    assert str(refused.value) == "keep 'nothing' matches no tensor" and refused.value.hint == Hint("keep", "nothing")
    assert error_line(refused.value) == "--keep 'nothing' matches no tensor"


def test_every_hint_topic_has_both_wordings() -> None:
    from metainspect.cli.options import flag_phrase

    for topic in typing.get_args(HintTopic):
        hint = Hint(topic, ("float32", "float16") if topic == "cast" else None)
        api, flags = hint.text, flag_phrase(hint, MetainspectError(None, hint.text, hint))
        assert api and flags and api != flags, topic
        assert "--" not in api and "`metainspect" not in api, topic


def test_a_key_error_bug_is_not_swallowed(monkeypatch: pytest.MonkeyPatch, cli: Cli) -> None:
    from metainspect.cli import run
    from metainspect.graph.model import Model

    def broken(self: Model, include_saver: bool = False) -> list[object]:
        return {}["a bug"]  # type: ignore[return-value]

    monkeypatch.setattr(Model, "placeholders", broken)
    with pytest.raises(KeyError, match="a bug"):
        run(["placeholders", str(SAMPLES / "mlp")])
    result = cli("placeholders", str(SAMPLES / "mlp"))  # as a user sees it: the traceback, not one line
    assert result.code == 1 and "Traceback" in result.stderr and "KeyError: 'a bug'" in result.stderr


def test_debug_shows_the_traceback_of_a_user_error(cli: Cli) -> None:
    result = cli("--debug", "show", str(SAMPLES / "mlp"), "nope")
    assert result.code == 2 and "Traceback" in result.stderr and "TensorNotFoundError" in result.stderr
