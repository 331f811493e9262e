"""Edit graphs: devices, signatures, tags, renames, shapes, collections, pruning, training ops.

``model.edit()`` gives an :class:`Editor`: chain operations on a copy of the model, then take
the result with ``.model()`` (in memory) or ``.save(path)``. Underneath, every function here
changes a tensorboard ``MetaGraphDef`` in place and, given a :class:`ChangeLog`, records each
change it makes; :func:`apply_edits` runs a whole :class:`EditSpec` on an :class:`EditTarget`.
No TensorFlow involved.
"""

from metainspect.edit.changes import Change, ChangeLog
from metainspect.edit.collection_ops import drop_collection
from metainspect.edit.devices import clear_devices
from metainspect.edit.editor import Editor
from metainspect.edit.pipeline import EditSpec, NewSignature, apply_edits
from metainspect.edit.prune import prune_to, strip_training
from metainspect.edit.rename import rename
from metainspect.edit.shapes import set_shape
from metainspect.edit.signatures import METHODS, add_signature, remove_signature, set_tags
from metainspect.edit.target import EditTarget, WriteResult, open_target, write_in_place, write_output

__all__ = [
    "METHODS", "Change", "ChangeLog", "EditSpec", "EditTarget", "Editor", "NewSignature", "WriteResult",
    "add_signature", "apply_edits", "clear_devices", "drop_collection", "open_target", "prune_to",
    "remove_signature", "rename", "set_shape", "set_tags", "strip_training", "write_in_place", "write_output",
]
