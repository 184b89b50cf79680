"""``promptctl new``: the files a fresh prompt starts with."""

from __future__ import annotations

from pathlib import Path

from .spec import validate_id

TEXT_META = """\
description: TODO one line on what this prompt does
owner: TODO team-or-person@example.com
type: text
model:
  name: gpt-4o-mini
  temperature: 0
inputs:
  message: {type: string, required: true, example: "Hello"}
tags: []
"""

TEXT_BODY = """\
You are a helpful assistant.

Message: {{ message }}
"""

CHAT_META = TEXT_META.replace("type: text", "type: chat")

CHAT_BODY = """\
system:
You are a helpful assistant.

user:
{{ message }}
"""


def scaffold_prompt(repo, prompt_id: str, chat: bool = False) -> Path:
    """Create ``<registry>/<id>/prompt.yaml`` and ``body.j2``; FileExistsError when the prompt exists."""
    directory = repo.registry_dir / validate_id(prompt_id)
    directory.mkdir(parents=False, exist_ok=False)
    (directory / "prompt.yaml").write_text(CHAT_META if chat else TEXT_META, encoding="utf-8")
    (directory / "body.j2").write_text(CHAT_BODY if chat else TEXT_BODY, encoding="utf-8")
    return directory
