"""Write the README's settings tables from their declaration (shared/config.py `GROUPS`).

`python -m scripts.settings_doc` rewrites what stands between the two markers below in README.md;
`python -m scripts.settings_doc --check` exits 1 when the README is not current (tests/test_config.py checks it too).
"""

from __future__ import annotations

import sys

from shared.config import PROJECT_ROOT, markdown_tables

BEGIN = "<!-- settings: generated from shared/config.py by `python -m scripts.settings_doc` -->"
END = "<!-- settings: end -->"
README = PROJECT_ROOT / "README.md"


def current_block(text: str) -> str:
    """What the README holds between the markers."""
    _, begin, rest = text.partition(BEGIN)
    block, end, _ = rest.partition(END)
    if not begin or not end:
        raise SystemExit(f"README.md lacks the markers {BEGIN!r} ... {END!r}")
    return block.strip("\n")


def rewritten(text: str) -> str:
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{markdown_tables().rstrip()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    text = README.read_text()
    current_block(text)  # the markers are there
    if "--check" in argv:
        if current_block(text) != markdown_tables().strip("\n"):
            print("README.md's settings tables are stale: run python -m scripts.settings_doc", file=sys.stderr)
            return 1
        return 0
    README.write_text(rewritten(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
