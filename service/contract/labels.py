"""Labels: names that point at a prompt's versions, which are reserved, which protected.

A prompt has any number of labels. ``production`` is the one agents resolve by default and
the only one canaries run on; ``latest`` always points at the newest version (promptd
keeps it, nobody sets it); every other name is the caller's (``staging``, ``eu-pilot``).

A label name is lowercase letters, digits, ``.``, ``_`` and ``-``, starting with a letter
(so it never reads as a version number). Reserved names are refused: ``latest``, and the
words that name the prompt's sub-resources and command options, so a label never reads
like one in a URL or on the command line.

Protected labels move only with an admin token; ``production`` is protected unless an
admin says otherwise, every other label is unprotected unless an admin protects it. An
agent token may move an unprotected label (a pipeline pointing ``staging`` at the version
it just tested needs no admin rights), never a protected one.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field

PRODUCTION = "production"
LATEST = "latest"
LABEL_MAX = 64
LABEL_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
PROTECTED_BY_DEFAULT = frozenset({PRODUCTION})
RESERVED_LABELS = frozenset({
    LATEST, "labels", "label", "versions", "version", "history", "diff", "resolve", "render",
    "rollback", "policy", "candidates", "patterns", "export", "import", "all", "none",
})


def label_problem(name: str) -> str | None:
    """Return why ``name`` cannot be a label someone sets, or None if it can."""
    if not LABEL_RE.fullmatch(name):  # match: "$" would also take a trailing newline
        return ("a label is 1-64 lowercase letters, digits, '.', '_' or '-', starting with "
                "a letter")
    if name == LATEST:
        return "'latest' is kept by promptd (it always points at the newest version)"
    if name in RESERVED_LABELS:
        return f"{name!r} is reserved (it names a route or a command option)"
    return None


def _label(name: str) -> str:
    problem = label_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


# The pattern is in the schema only (generated clients, fuzzers know the shape); the validator
# checks it with fullmatch and answers in words.
LabelName = Annotated[str, Field(min_length=1, max_length=LABEL_MAX,
                                  json_schema_extra={"pattern": LABEL_RE.pattern}),
                      AfterValidator(_label)]
