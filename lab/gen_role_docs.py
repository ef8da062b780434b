"""Write each role's variable tables (roles/<role>/README.md) from its meta/argument_specs.yml.

One table per entry point (``main`` first, then the others by name), under a heading with the entry point's
short_description; columns: variable, type, default, required, description. The default is the spec's
``default``; where the spec declares none, the value in the role's defaults/main.yml unless the variable is
required (tests/unit/test_role_docs.py holds the two equal where both exist).

Each README holds the tables between ``BEGIN generated: variables`` / ``END generated: variables`` markers.
``python3 -m lab.gen_role_docs`` rewrites them; ``--check`` exits 1 naming each README that differs
(tests/unit/test_role_docs.py runs the same).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from lab.generated_block import update_files

ROOT = Path(__file__).resolve().parent.parent
ROLES = ROOT / "roles"
BEGIN = "<!-- BEGIN generated: variables (lab/gen_role_docs.py) -->"
END = "<!-- END generated: variables -->"
# A Jinja default longer than this, or on more than one line, is named, not shown.
MAX_JINJA = 80
COMPUTED = "computed: see [`defaults/main.yml`](defaults/main.yml)"

_MISSING = object()
# What I(x) and B(x) mark with until the text is escaped; then Markdown's emphasis mark.
_EMPHASIS = "\x00"
# Ansible's documentation markup (the module format guide, "Linking and other format macros").
_MARKUP = [
    (re.compile(r"(?<![A-Za-z0-9_])L\(([^,)]*),\s*([^)]*)\)"), r"[\1](\2)"),
    (re.compile(r"(?<![A-Za-z0-9_])R\(([^,)]*),\s*([^)]*)\)"), r"`\1`"),
    (re.compile(r"(?<![A-Za-z0-9_])[CEMOPV]\(([^)]*)\)"), r"`\1`"),
    (re.compile(r"(?<![A-Za-z0-9_])I\(([^)]*)\)"), "\x00\\1\x00"),
    (re.compile(r"(?<![A-Za-z0-9_])B\(([^)]*)\)"), "\x00\x00\\1\x00\x00"),
    (re.compile(r"(?<![A-Za-z0-9_])U\(([^)]*)\)"), r"\1"),
    (re.compile(r"\s*HORIZONTALLINE\s*"), " "),
]
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")


def roles() -> list[Path]:
    """Every role directory, by name."""
    return sorted(p for p in ROLES.iterdir() if p.is_dir())


def load_specs(role: Path) -> dict[str, Any]:
    """The role's entry points (``argument_specs``), main first, then the others by name."""
    data = yaml.safe_load((role / "meta" / "argument_specs.yml").read_text()) or {}
    specs: dict[str, Any] = data.get("argument_specs") or {}
    order = sorted(specs, key=lambda name: (name != "main", name))
    return {name: specs[name] for name in order}


def load_defaults(role: Path) -> dict[str, Any]:
    path = role / "defaults" / "main.yml"
    if not path.exists():
        return {}
    return dict(yaml.safe_load(path.read_text()) or {})


def _code(text: str) -> str:
    """``text`` as a code span; ``|`` escaped, as a table cell needs (GitHub renders ``\\|`` in code as ``|``)."""
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _escape_prose(text: str) -> str:
    """Escape what Markdown would read as a cell border (``|``, code spans too), an HTML tag or emphasis."""
    out = []
    pos = 0
    for m in _CODE_SPAN.finditer(text):
        out.append(_escape_plain(text[pos : m.start()]))
        out.append(m.group(0).replace("|", "\\|"))
        pos = m.end()
    out.append(_escape_plain(text[pos:]))
    return "".join(out)


def _escape_plain(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*")
    # <name>, </x>, <!x: an HTML tag to Markdown, which GitHub would drop with what it holds.
    return re.sub(r"<(?=[A-Za-z/!?])", r"\\<", text)


def render_markup(text: str) -> str:
    """Ansible's markup as Markdown: C(x), O(x), V(x), E(x), M(x), P(x), R(x, y) as `x`, L(x, url) a link; I(x) and
    B(x) emphasised (with _EMPHASIS, which one_line turns into ``*`` once the text is escaped)."""
    for pattern, replacement in _MARKUP:
        text = pattern.sub(replacement, text)
    return text


def one_line(description: str | list[str] | None) -> str:
    """A description (a string or a list of paragraphs) as one line of a table cell."""
    if description is None:
        return ""
    parts = [description] if isinstance(description, str) else [str(p) for p in description]
    text = " ".join(" ".join(p.split()) for p in parts)
    return _escape_prose(" ".join(render_markup(text).split())).replace(_EMPHASIS, "*")


def _is_jinja(value: object) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def show_default(value: object) -> str:
    """A default as YAML prints it (flow style), in code; a Jinja expression as written, or named when long."""
    if value is _MISSING:
        return ""
    if _is_jinja(value):
        text = str(value)
        return COMPUTED if "\n" in text or len(text) > MAX_JINJA else _code(text)
    dumped = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False)
    dumped = dumped.removesuffix("\n").removesuffix("\n...").strip()
    return _code(dumped)


def show_type(option: dict[str, Any]) -> str:
    """``list of str``; ``(no_log)`` for a secret; the choices, each in code."""
    kind = str(option.get("type", "str"))
    if kind == "list" and option.get("elements"):
        kind = f"list of {option['elements']}"
    if option.get("no_log"):
        kind += " (no_log)"
    choices = option.get("choices")
    if choices:
        kind += ": " + ", ".join(_code(str(c)) for c in choices)
    return kind


def entry_table(name: str, entry: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    heading = one_line(entry.get("short_description")) or name
    lines = [f"### `{name}`: {heading}", ""]
    if name != "main":
        lines += [f"`include_role` / `import_role` with `tasks_from: {name}`.", ""]
    options: dict[str, Any] = entry.get("options") or {}
    if not options:
        return [*lines, "No variables.", ""]
    lines += ["| variable | type | default | required | description |", "| --- | --- | --- | --- | --- |"]
    for var, option in options.items():
        opt = option or {}
        required = bool(opt.get("required"))
        default = opt.get("default", _MISSING if required else defaults.get(var, _MISSING))
        cells = [
            _code(var),
            show_type(opt),
            show_default(default),
            "yes" if required else "",
            one_line(opt.get("description")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def block(role: Path) -> str:
    """The generated block of one role (what sits between the markers)."""
    defaults = load_defaults(role)
    lines = [
        "Generated from [`meta/argument_specs.yml`](meta/argument_specs.yml) (`python3 -m lab.gen_role_docs`);",
        "defaults in [`defaults/main.yml`](defaults/main.yml).",
        "",
    ]
    for name, entry in load_specs(role).items():
        lines += entry_table(name, entry or {}, defaults)
    # The blank line that ends the last table, then the END marker.
    return "\n".join([*lines, ""])


def _replace(text: str, body: str, path: Path) -> str:
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"{path.relative_to(ROOT)}: needs one {BEGIN} and one {END} line")
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[:start] + "\n" + body + text[end:]


def rendered() -> dict[Path, str]:
    """Each role README as the generator writes it."""
    out = {}
    for role in roles():
        readme = role / "README.md"
        out[readme] = _replace(readme.read_text(), block(role), readme)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a README differs from its argument specs")
    args = parser.parse_args(argv)
    try:
        texts = rendered()
    except ValueError as err:
        sys.stderr.write(f"{err}\n")
        return 2
    return update_files(texts, args.check, ROOT, "stale (run python3 -m lab.gen_role_docs)")


if __name__ == "__main__":
    raise SystemExit(main())
