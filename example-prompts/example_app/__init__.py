"""A tiny example application for the walkthrough: an offline, deterministic stand-in for an LLM."""
