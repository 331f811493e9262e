"""Pictures of graphs without TensorFlow: TensorBoard event files and Graphviz DOT/SVG.

:func:`subject_of` picks what to show (the graph or one library function),
:func:`gather_knowledge` collects what metainspect knows about its nodes (checkpoint shapes,
check findings); :func:`~metainspect.picture.tensorboard.write_event_file` and
:func:`~metainspect.picture.dot.draw` turn those into pictures.
"""

from metainspect.picture.dot import DotPicture, PictureError, Selection, draw
from metainspect.picture.function_graph import NoSuchFunctionError, function_graph_def
from metainspect.picture.knowledge import Knowledge
from metainspect.picture.render import GraphvizMissingError, render
from metainspect.picture.subject import Subject, gather_knowledge, subject_of, summary_markdown
from metainspect.picture.tensorboard import annotate, write_event_file

__all__ = [
    "DotPicture", "GraphvizMissingError", "Knowledge", "NoSuchFunctionError", "PictureError", "Selection",
    "Subject", "annotate", "draw", "function_graph_def", "gather_knowledge", "render", "subject_of",
    "summary_markdown", "write_event_file",
]
