"""The `checkpoint` state file (FORMAT_NOTES §6): parsing and latest-checkpoint resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from metainspect.errors import CorruptError, NotFoundError
from metainspect.formats.checkpoint_state import basename, checkpoint_exists, latest_checkpoint, read_state

TF2_STATE = """model_checkpoint_path: "ckpt-2"
all_model_checkpoint_paths: "ckpt-1"
all_model_checkpoint_paths: "ckpt-2"
all_model_checkpoint_timestamps: 1795306242.0433288
all_model_checkpoint_timestamps: 1795306242.0565157
last_preserved_timestamp: 1795306241.0180619
"""


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def test_parse_tf2_manager_state(tmp_path: Path) -> None:
    (tmp_path / "checkpoint").write_text(TF2_STATE)
    state = read_state(str(tmp_path / "checkpoint"))
    assert state.model_checkpoint_path == "ckpt-2"
    assert list(state.all_model_checkpoint_paths) == ["ckpt-1", "ckpt-2"]
    assert state.all_model_checkpoint_timestamps[1] == pytest.approx(1795306242.0565157)
    _touch(tmp_path / "ckpt-2.index")
    assert latest_checkpoint(str(tmp_path)).prefix == str(tmp_path / "ckpt-2")
    assert latest_checkpoint(str(tmp_path)).notes == ()


def test_absolute_path_that_exists(tmp_path: Path) -> None:
    _touch(tmp_path / "run1" / "model.ckpt.index")
    (tmp_path / "checkpoint").write_text(f'model_checkpoint_path: "{tmp_path}/run1/model.ckpt"\n')
    assert latest_checkpoint(str(tmp_path)) .prefix == f"{tmp_path}/run1/model.ckpt"


@pytest.mark.parametrize(
    ("recorded", "text"),
    [
        ("F:\\ChatBot\\chatbot_model.tflearn", 'model_checkpoint_path: "F:\\\\ChatBot\\\\chatbot_model.tflearn"'),
        ("G:/CNN/chatbot_model.tflearn", 'model_checkpoint_path: "G:/CNN/chatbot_model.tflearn"'),
        ("/data/run1/chatbot_model.tflearn", 'model_checkpoint_path: "/data/run1/chatbot_model.tflearn"'),
    ],
)
def test_foreign_absolute_path_falls_back_to_basename(tmp_path: Path, recorded: str, text: str) -> None:
    _touch(tmp_path / "chatbot_model.tflearn.index")
    (tmp_path / "checkpoint").write_text(text + "\n")
    latest = latest_checkpoint(str(tmp_path))
    assert latest.prefix == str(tmp_path / "chatbot_model.tflearn")
    (note,) = latest.notes
    assert recorded in note and "another machine" in note and "chatbot_model.tflearn" in note


def test_v1_sharded_glob_and_single_file(tmp_path: Path) -> None:
    _touch(tmp_path / "model.ckpt-00000-of-00002")
    _touch(tmp_path / "model.ckpt-00001-of-00002")
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "/gone/model.ckpt-?????-of-00002"\n')
    latest = latest_checkpoint(str(tmp_path))
    assert latest.prefix == str(tmp_path / "model.ckpt-?????-of-00002") and latest.notes
    assert checkpoint_exists(str(tmp_path / "model.ckpt-00001-of-00002"))


def test_directory_with_glob_characters(tmp_path: Path) -> None:
    weird = tmp_path / "run[1]"
    _touch(weird / "ckpt-1.index")
    (weird / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
    assert latest_checkpoint(str(weird)).prefix == str(weird / "ckpt-1")


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no checkpoint state file"):
        latest_checkpoint(str(tmp_path))
    (tmp_path / "checkpoint").write_text("this is: not { a state")
    with pytest.raises(CorruptError, match="not a checkpoint state file"):
        latest_checkpoint(str(tmp_path))
    (tmp_path / "checkpoint").write_text('all_model_checkpoint_paths: "x"\n')
    with pytest.raises(CorruptError, match="model_checkpoint_path is empty"):
        latest_checkpoint(str(tmp_path))
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "C:\\\\x\\\\ckpt-9"\n')
    with pytest.raises(NotFoundError, match=r"ckpt-9.*does not exist"):
        latest_checkpoint(str(tmp_path))


def test_text_escapes_and_basename() -> None:
    assert basename("F:\\a\\b.ckpt") == "b.ckpt" and basename("a/b/c") == "c" and basename("c") == "c"


def test_escaped_quote_in_path(tmp_path: Path) -> None:
    _touch(tmp_path / 'we"ird.index')
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "we\\"ird"\n')
    assert latest_checkpoint(str(tmp_path)).prefix == str(tmp_path / 'we"ird')
