"""Every `llm_serving_services` example in the README and docs passes preflight and renders for serving."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.service_helpers import NVAPI_KEY, SPARK_GPU, STATION_GPU, render

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "docs" / "serving.md", ROOT / "docs" / "development.md"]


def _examples() -> list[Any]:
    found = []
    for doc in DOCS:
        for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S):
            data = yaml.safe_load(block)
            if isinstance(data, dict) and "all" in data:
                continue  # an inventory with a service across hosts: planned on its hosts in test_multihost_wiring
            if isinstance(data, dict) and "llm_serving_services" in data:
                found.append(
                    pytest.param(
                        data["llm_serving_services"], id=f"{doc.name}:{data['llm_serving_services'][0]['name']}"
                    )
                )
            elif isinstance(data, list) and data and isinstance(data[0], dict) and "engine" in data[0]:
                found.append(pytest.param(data, id=f"{doc.name}:{data[0]['name']}"))
    return found


EXAMPLES = _examples()


def test_the_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("gpu", [SPARK_GPU, STATION_GPU], ids=["spark", "station"])
@pytest.mark.parametrize("services", EXAMPLES)
def test_example_passes_preflight_and_renders(services: list[dict[str, Any]], gpu: dict[str, Any]) -> None:
    out = render(services, gpu, plan_over={"ngc_api_key": NVAPI_KEY})
    assert out["errors"] == []
    assert {s["name"] for s in out["present"]} == {s["name"] for s in services}
