"""The training example needs the optional extra [train]; it is not run here (minutes of CPU), only imported."""

import importlib.util

import pytest
from conftest import REPO

EXTRA = ("torch", "transformers", "trl", "gguf", "datasets")
MISSING = [m for m in EXTRA if importlib.util.find_spec(m) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"the [train] extra is not installed ({', '.join(MISSING)} missing)")
def test_the_training_example_imports_against_the_installed_trl():
    spec = importlib.util.spec_from_file_location("train_smollm2", REPO / "examples" / "train_smollm2.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert callable(module.main) and callable(module.load_smollm2)
