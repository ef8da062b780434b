"""lab/generated_block.py: the generators' block between marker lines, and their YAML indentation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab.generated_block import IndentedDumper, replace_between, update_files

TEXT = "head\n# BEGIN generated: x\nold 1\nold 2\n  # END generated: x\ntail\n# END generated: x\n"


def test_the_lines_between_the_markers_are_replaced_whole() -> None:
    out = replace_between(TEXT, "# BEGIN generated: x", "# END generated: x", "new\n")
    assert out == "head\n# BEGIN generated: x\nnew\n  # END generated: x\ntail\n# END generated: x\n"
    # Idempotent: the generator's --check compares a second rendering with the file.
    assert replace_between(out, "# BEGIN generated: x", "# END generated: x", "new\n") == out


def test_a_missing_marker_is_an_error() -> None:
    with pytest.raises(ValueError):
        replace_between("no markers\n", "# BEGIN", "# END", "x\n")


def test_lists_are_indented_under_their_key() -> None:
    assert yaml.dump({"a": [1, 2]}, Dumper=IndentedDumper) == "a:\n  - 1\n  - 2\n"


def test_check_names_a_stale_file_without_writing_it_and_a_run_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stale, fresh = tmp_path / "a.md", tmp_path / "b.md"
    stale.write_text("old\n")
    fresh.write_text("same\n")
    texts = {stale: "new\n", fresh: "same\n"}
    assert update_files(texts, True, tmp_path, "stale (run x)") == 1
    assert stale.read_text() == "old\n" and capsys.readouterr().out == "stale (run x): a.md\n"
    assert update_files(texts, False, tmp_path) == 0
    assert stale.read_text() == "new\n" and capsys.readouterr().out == "rewrote: a.md\n"
    assert update_files(texts, True, tmp_path) == 0
