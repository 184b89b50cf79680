"""Eval targets for the walkthrough: a keyword-rules "model" that reads the rendered prompt.

``classify(prompt, item)`` is what ``promptctl eval run --target example_app.targets:classify`` calls. It
renders the resolved prompt with the item's inputs and hands the text to ``toy_model``, which behaves like a
(very literal) LLM: it takes its instructions from the prompt, so a prompt change changes its answers:

* the allowed labels come from the prompt's ``Allowed intents: ...`` line;
* rules written in the prompt (``Contract and invoice questions are billing_question.``) win over its own
  keyword knowledge;
* it answers with the bare label only when the prompt asks for "the intent label only" (or, in German,
  "nur mit dem englischen Label"); otherwise it answers in a sentence;
* it only sees the message the prompt shows it (the ``Message:`` / ``Nachricht:`` line).

No network, no randomness: the same prompt and message always give the same answer.
"""

from __future__ import annotations

import re

from opentelemetry import trace

_tracer = trace.get_tracer("example_app")

# What the "model" knows on its own: keyword stems per label, in English, German and French.
KEYWORDS = {
    "cancel_order": ("cancel", "stornier", "annul"),
    "refund": ("refund", "money back", "geld zurück", "rückerstatt", "erstatten", "rembours"),
    "shipping_status": ("where is my", "tracking", "package", "parcel", "delivery", "paket", "lieferung", "sendung", "colis", "livraison"),
    "billing_question": ("invoice", "charged", "billing", "rechnung", "abgebucht", "facture", "débité", "prélèvement"),
    "technical_issue": ("error", "crash", "log in", "login", "password", "fehler", "passwort", "stürzt", "erreur", "mot de passe", "plante"),
}
_ALLOWED = re.compile(r"^Allowed intents:\s*(.+?)\.?\s*$", re.MULTILINE)
_RULE = re.compile(r"^(.+?)\s+(?:questions are|sind)\s+([a-z_]+)\.\s*$", re.MULTILINE)
_MESSAGE = re.compile(r"^(?:Message|Nachricht)\s*:\s*(.*)$", re.MULTILINE)
_STOP_WORDS = {"and", "or", "und", "oder", "et", "ou", "questions", "fragen"}
_LABEL_ONLY = ("label only", "nur mit dem englischen label")


def _rule_stems(subject: str) -> list[str]:
    """'Contract and invoice' -> ['contra', 'invoic']; 'Rechnungs- und Vertragsfragen' -> ['rechnu', 'vertra']."""
    stems = []
    for word in re.findall(r"[^\W\d_]+", subject.lower()):
        if word not in _STOP_WORDS and len(word) >= 4:
            stems.append(word[:6])
    return stems


def toy_model(prompt_text: str) -> str:
    """The deterministic answer to a rendered prompt."""
    allowed_match = _ALLOWED.search(prompt_text)
    allowed = [label.strip() for label in allowed_match.group(1).split(",")] if allowed_match else list(KEYWORDS)
    messages = _MESSAGE.findall(prompt_text)
    message = messages[-1].lower() if messages else ""
    label = "other"
    rules = [(stem, target) for subject, target in _RULE.findall(prompt_text) for stem in _rule_stems(subject)]
    ruled = [(message.find(stem), target) for stem, target in rules if stem in message]
    if ruled:
        label = min(ruled)[1]
    else:
        hits = [(message.find(k), name) for name, keys in KEYWORDS.items() for k in keys if k in message]
        if hits:
            label = min(hits)[1]
    if label not in allowed:
        label = "other"
    lowered = prompt_text.lower()
    if any(phrase in lowered for phrase in _LABEL_ONLY):
        return label
    return f"The intent of this message is {label}."


def classify(prompt, item):
    """The eval target: render the resolved prompt with the item's inputs and ask the toy model.

    The model call gets its own span (as an instrumented LLM client would open); it is started inside
    ``prompt.use()``, so it carries the prompt.* attributes.
    """
    text = prompt.render(**item.inputs)
    with _tracer.start_as_current_span("chat toy-model", kind=trace.SpanKind.CLIENT) as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", prompt.model or "toy-model")
        answer = toy_model(text)
    return answer
