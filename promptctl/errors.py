"""Every error a user can cause, each with the exit code the CLI maps it to.

The core raises these; only ``promptctl.cli.main`` turns them into one line on stderr and an exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PROBLEMS = 1  # a check found problems (verify, lint, status --check, gates, alerts, conform findings)
    USAGE = 2  # bad arguments, invalid id / version spec / channel name / percent
    NOT_FOUND = 3  # unknown prompt, version, channel, hash; no registry; not a Git repository
    INVALID_CONTENT = 4  # YAML / Jinja2 syntax errors, include outside the registry, non-UTF-8 body
    REFUSED = 5  # nothing changed, protected channel without reason, unsigned, no earlier version, bad HEAD
    CONFLICT = 6  # a concurrent update won the compare-and-swap, the remote moved on, diverged refs
    ENVIRONMENT = 7  # git missing, remote / ClickHouse unreachable, destination not writable


class PromptctlError(Exception):
    """Base class: a message a user can act on, and an exit code."""

    exit_code: ExitCode = ExitCode.USAGE

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(PromptctlError, ValueError):
    exit_code = ExitCode.USAGE


class InvalidId(UsageError):
    pass


class InvalidVersionSpec(UsageError):
    pass


class InvalidChannelName(UsageError):
    pass


class NotFound(PromptctlError, LookupError):
    exit_code = ExitCode.NOT_FOUND


class NotAGitRepository(NotFound):
    pass


class NoRegistry(NotFound):
    pass


class UnknownPrompt(NotFound):
    pass


class UnknownVersion(NotFound):
    pass


class UnknownChannel(NotFound):
    pass


class UnknownHash(NotFound):
    pass


class AmbiguousHash(UsageError):
    """A hash prefix matches versions with different contents; ``candidates`` holds them all."""

    def __init__(self, message: str, candidates: list | None = None):
        super().__init__(message)
        self.candidates = list(candidates or [])


class InvalidContent(PromptctlError):
    exit_code = ExitCode.INVALID_CONTENT


class YamlError(InvalidContent):
    pass


class TemplateSyntaxError(InvalidContent):
    pass


class IncludeOutsideRegistry(InvalidContent):
    pass


class NotUtf8(InvalidContent):
    pass


class RenderError(PromptctlError):
    """A template failed to render: a missing required variable, a wrong input type."""

    exit_code = ExitCode.USAGE


class MissingVariable(RenderError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class InputTypeError(RenderError, TypeError):
    pass


class Refused(PromptctlError):
    exit_code = ExitCode.REFUSED


class NothingChanged(Refused):
    pass


class BadHead(Refused):
    pass


class ReasonRequired(Refused):
    pass


class SignatureRequired(Refused):
    pass


class NoEarlierVersion(Refused):
    pass


class Conflict(PromptctlError):
    exit_code = ExitCode.CONFLICT


class EnvironmentProblem(PromptctlError):
    exit_code = ExitCode.ENVIRONMENT


class GitMissing(EnvironmentProblem):
    pass


class GitFailed(EnvironmentProblem):
    """A git command failed in a way no more specific error explains."""


class Unreachable(EnvironmentProblem):
    pass


class NotWritable(EnvironmentProblem):
    pass


class RegistryUnavailable(PromptctlError):
    """The runtime loader has nothing it can serve (nothing loaded yet and no fallback given)."""

    exit_code = ExitCode.ENVIRONMENT
