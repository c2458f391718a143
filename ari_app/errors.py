"""Errors an admin can cause, and the one message each becomes.

A bad setting, a bad flow file, a missing or unreadable file: every CLI command reports these
the same way (one message naming the file and the key, exit code 2), never as a traceback. The
mapping lives here, not in each command, so a new command cannot forget one. Anything not
recognised here is our own bug and keeps its traceback.
"""

from __future__ import annotations

from functools import cache

import yaml
from pydantic import ValidationError

from ari_app.config import ConfigError

# Errors about a path the user gave (or left out), as opposed to I/O trouble in our own code.
_FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


@cache
def _settings_models() -> frozenset[str]:
    """Names of the settings models: a ValidationError titled with one is a configuration error."""
    from ari_app.config import Settings

    names = {Settings.__name__}
    for f in Settings.model_fields.values():
        if isinstance(f.annotation, type):
            names.add(f.annotation.__name__)
    return frozenset(names)


def user_error(exc: BaseException) -> str | None:
    """The message for an error the user caused (bad config, flows or file), None for anything else."""
    from ari_app.dialog.loader import FlowError  # lazily: the CLI starts without the dialog code
    from ari_app.outbound.errors import CampaignError

    if isinstance(exc, (ConfigError, FlowError, CampaignError)):
        return str(exc)
    if isinstance(exc, ValidationError) and exc.title in _settings_models():
        from ari_app.config import _describe

        return _describe(exc, "settings")
    if isinstance(exc, _FILE_ERRORS) and exc.filename is not None:
        return f"cannot read {exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, yaml.YAMLError):
        mark = getattr(exc, "problem_mark", None)
        where = f"{mark.name} (line {mark.line + 1}, column {mark.column + 1})" if mark else "a YAML file"
        return f"{where} is not valid YAML: {getattr(exc, 'problem', None) or exc}"
    return None
