"""Test-only support, importable from every test folder as ``helpers`` (``pythonpath`` in pyproject).

- :mod:`helpers.paths`: where the samples and the third-party models live;
- :mod:`helpers.cli`: the command line in-process (``cli`` fixture) or in a child process;
- :mod:`helpers.graph`: small graphs written node by node (``GraphBuilder``);
- :mod:`helpers.table`, :mod:`helpers.bundle`, :mod:`helpers.v1`: the suite's own encoders of the
  on-disk formats, written from docs/formats.md and not from metainspect's writers, so that a
  reader bug and a writer bug cannot cancel out.
"""
