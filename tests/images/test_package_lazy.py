"""`atmos_tasks.images` names its build-stage API without loading it: a rollout that only records
an SBOM (`images.sbom`) does not load the planner."""

from __future__ import annotations

import subprocess
import sys

import atmos_tasks.images as images
from atmos_tasks.images import errors, planner


def test_recording_an_sbom_does_not_load_the_planner() -> None:
    probe = "import sys, atmos_tasks.images.sbom; print('atmos_tasks.images.planner' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


def test_the_package_still_names_its_api() -> None:
    assert images.BuildError is errors.BuildError
    assert images.make_plan is planner.make_plan and images.source_hash is planner.source_hash
    assert set(images.__all__) <= set(dir(images))
    try:
        images.nothing_here  # noqa: B018
    except AttributeError as err:
        assert "nothing_here" in str(err)
    else:
        raise AssertionError("an unknown name must raise AttributeError")
