"""Write the service model (plugins/module_utils/sparkfleet/service/model.py) into the files that show it.

- ``roles/llm_serving/meta/argument_specs.yml``: the ``options`` of ``llm_serving_services``;
- ``docs/development.md``: the service table.

Both sit between ``BEGIN generated`` / ``END generated`` markers. ``python3 -m lab.gen_service_docs`` rewrites
them; ``--check`` exits 1 when a file differs from the model (tests/unit/test_service_model.py runs the same).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))

from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.service import model  # noqa: E402

from lab.generated_block import IndentedDumper, replace_between, update_files  # noqa: E402

SPEC = ROOT / "roles" / "llm_serving" / "meta" / "argument_specs.yml"
DOCS = ROOT / "docs" / "development.md"
BEGIN = "BEGIN generated from plugins/module_utils/sparkfleet/service/model.py (python3 -m lab.gen_service_docs)"
END = "END generated"


def _replace(text: str, block: str, comment: str) -> str:
    return replace_between(text, f"{comment} {BEGIN}", f"{comment} {END}", block)


def spec_block() -> str:
    indent = " " * 10
    options = model.argument_spec_options()
    body = yaml.dump(options, Dumper=IndentedDumper, sort_keys=False, width=100, default_flow_style=False)
    return "".join(f"{indent}{line}\n" if line else "\n" for line in body.splitlines())


def docs_block() -> str:
    return "\n".join(model.docs_table()) + "\n"


def rendered() -> dict[Path, str]:
    return {
        SPEC: _replace(SPEC.read_text(), spec_block(), "          #"),
        DOCS: _replace(DOCS.read_text(), docs_block(), "<!--"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a file differs from the model")
    args = parser.parse_args(argv)
    return update_files(rendered(), args.check, ROOT)


if __name__ == "__main__":
    raise SystemExit(main())
