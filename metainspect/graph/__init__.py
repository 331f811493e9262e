"""The query model over a graph and the one home of what metainspect knows about TF graphs."""
