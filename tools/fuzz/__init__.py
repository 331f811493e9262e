"""metainspect's fuzz harness: structure-aware mutators, a worker under limits, a regression corpus.

``python -m tools.fuzz --help`` runs it; README "Reliability" says what it covers and why it is
built this way. Modules: :mod:`~tools.fuzz.mutators` (integers, bytes, protobuf wire data and
messages), :mod:`~tools.fuzz.tables` (tables rebuilt with chosen lies), :mod:`~tools.fuzz.families`
(seeds and mutations per input family), :mod:`~tools.fuzz.targets` (the public API calls),
:mod:`~tools.fuzz.worker` (the limited child process), :mod:`~tools.fuzz.runner` (timeouts,
classification, saving), :mod:`~tools.fuzz.case` (an input and its regression file).
"""
