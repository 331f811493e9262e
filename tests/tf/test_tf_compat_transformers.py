"""transformers 4.x's own TensorFlow loaders under the stand-in, with TensorFlow hidden, give the
same PyTorch state_dicts as with the real TensorFlow.

The reference is computed here, with TensorFlow; the stand-in runs in a child process where
``sys.modules["tensorflow"] = None`` makes TensorFlow unimportable. The two runs seed PyTorch
differently, so a weight the loader left at its random initial value could not match.
Needs ``torch`` (the CPU wheel) and ``transformers==4.57.1`` beside the ``tf`` extra.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from helpers.paths import ROOT, SAMPLES

pytestmark = pytest.mark.tf

LOAD = textwrap.dedent("""
    import hashlib, json, logging, sys
    if sys.argv[1] == "stand-in":
        sys.modules["tensorflow"] = None  # as if TensorFlow were not installed
        import metainspect.tf_compat
        metainspect.tf_compat.install()
    import torch
    from transformers import BertConfig, BertForPreTraining, T5Config, T5ForConditionalGeneration
    from transformers.models.bert.modeling_bert import load_tf_weights_in_bert
    from transformers.models.t5.modeling_t5 import load_tf_weights_in_t5

    torch.manual_seed(int(sys.argv[2]))
    samples = sys.argv[3]
    result = {"tensorflow": type(sys.modules["tensorflow"]).__name__}
    for name, config, model_class, load, checkpoint in (
            ("bert", BertConfig, BertForPreTraining, load_tf_weights_in_bert, "bert/bert_model.ckpt"),
            ("t5", T5Config, T5ForConditionalGeneration, load_tf_weights_in_t5, "t5/model.ckpt-10")):
        with open(f"{samples}/{name}/config.json") as handle:
            model = model_class(config(**json.load(handle)))
        load(model, model.config, f"{samples}/{checkpoint}")
        result[name] = {key: [str(value.dtype), list(value.shape),
                              hashlib.sha256(value.detach().contiguous().numpy().tobytes()).hexdigest()]
                        for key, value in model.state_dict().items()}
    print(json.dumps(result))
""")


def _run(mode: str, seed: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", LOAD, mode, str(seed), str(SAMPLES / "convert")],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_bert_and_t5_loaders_without_tensorflow() -> None:
    pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    assert transformers.__version__.startswith("4."), "transformers 5 has no TensorFlow loaders"
    reference = _run("tensorflow", 1)
    stand_in = _run("stand-in", 2)
    assert reference.pop("tensorflow") == "module" and stand_in.pop("tensorflow") == "StandInModule"
    assert stand_in == reference
    assert len(reference["bert"]) > 40 and len(reference["t5"]) > 50
