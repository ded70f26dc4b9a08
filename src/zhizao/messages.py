"""Structured messages: a code, parameters and an English text, translated where they are shown.

Every text that zhizao computes for a user -- a KPI's null reason, a data-quality flag, a quarantine detail, a
verification warning or check, a recognition criterion, an error -- is a :class:`Message`, never a sentence
built in the stage that found it. A message carries

- ``code``: a stable identifier for machines (``"kpi.undefined_zero_denominator"``), dotted by stage;
- ``template``: the English text with ``%(name)s`` placeholders; it is also the message id (msgid) in the
  catalogues under ``src/zhizao/locale/`` (see :mod:`zhizao.i18n`);
- ``params``: the values of the placeholders (text, numbers, lists, or other messages).

Stages declare the kinds of message they emit once, at module level, with :func:`define`, and create
messages by calling the kind::

    >>> UNDEFINED = define("doc.undefined_zero", "undefined, %(denominator)s = 0")
    >>> m = UNDEFINED(denominator="pbt")
    >>> m.code, str(m)
    ('doc.undefined_zero', 'undefined, pbt = 0')
    >>> m.to_dict()
    {'code': 'doc.undefined_zero', 'params': {'denominator': 'pbt'}, 'message': 'undefined, pbt = 0'}

Front ends render a message in the reader's language with :meth:`Message.text` (``m.text("zh")``); machines
read ``code`` and ``params``. Nothing parses a rendered text back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Every message kind declared with :func:`define`, by code.
KINDS: dict[str, MessageKind] = {}
#: Parameters shown by a label (code -> parameter -> function of the stored value giving a message or text): the
#: parameter keeps its machine value (a column name), the reader sees its name (see :func:`define`).
LABELS: dict[str, dict[str, Any]] = {}


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _freeze(v)) for k, v in value.items())
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return value.item()
    return value


@dataclass(frozen=True)
class Message:
    """One message: ``code``, English ``template`` (the msgid) and ``params`` (hashable, in order).

    Create messages by calling a :class:`MessageKind` (see :func:`define`), not directly.
    """

    code: str
    template: str
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def args(self) -> dict[str, Any]:
        """The parameters as a dict."""
        return dict(self.params)

    def text(self, lang: str = "en") -> str:
        """The message in language ``lang`` (``"zh"`` or ``"en"``), through the message catalogues."""
        from zhizao.i18n import render_message

        return render_message(self, lang)

    def __str__(self) -> str:
        return self.text("en")

    def to_dict(self, lang: str = "en") -> dict:
        """``{"code", "params", "message"}`` with the message rendered in ``lang`` (JSON-able)."""
        return {"code": self.code, "params": _plain(self.args), "message": self.text(lang)}

    @classmethod
    def from_dict(cls, d: Mapping) -> Message:
        """The message of :meth:`to_dict` (a stored message keeps its code and parameters; its text is taken
        from the declared kind if there is one, else from the stored English ``message``)."""
        kind = KINDS.get(d["code"])
        template = kind.template if kind else str(d.get("message", d["code"])).replace("%", "%%")
        def value(v: Any) -> Any:  # a nested message, or a list that holds messages
            if isinstance(v, dict) and "code" in v:
                return cls.from_dict(v)
            return [value(x) for x in v] if isinstance(v, list) else v

        params = {k: value(v) for k, v in (d.get("params") or {}).items()}
        return cls(d["code"], template, tuple((k, _freeze(v)) for k, v in params.items()))


def _plain(value: Any) -> Any:
    if isinstance(value, Message):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class MessageKind:
    """A kind of message: a code and its English template (see :func:`define`)."""

    code: str
    template: str

    def __call__(self, **params: Any) -> Message:
        """A message of this kind with ``params`` (every placeholder of the template must be given)."""
        missing = _placeholders(self.template) - params.keys()
        if missing:
            raise TypeError(f"message {self.code} needs {', '.join(sorted(missing))}")
        return Message(self.code, self.template, tuple((k, _freeze(v)) for k, v in params.items()))


def _placeholders(template: str) -> set[str]:
    import re

    return set(re.findall(r"%\((\w+)\)", template))


def define(code: str, template: str, labels: Mapping[str, Any] | None = None) -> MessageKind:
    """Declare a kind of message (once, at module level) and return it.

    Parameters
    ----------
    code : str
        Stable dotted identifier, ``"<stage>.<what>"``.
    template : str
        English text with ``%(name)s`` placeholders; the msgid of its translations.
    labels : mapping, optional
        Parameter -> function ``(value, lang)`` of its value (each item of a list) giving what a reader of
        ``lang`` sees (a message or a text); the message keeps the value itself (a code or column name) for
        machines.

    Raises
    ------
    ValueError
        If ``code`` is already declared with another template.
    """
    old = KINDS.get(code)
    if old is not None and old.template != template:
        raise ValueError(f"message code {code} declared twice with different texts")
    kind = MessageKind(code, template)
    KINDS[code] = kind
    if labels:
        LABELS[code] = dict(labels)
    return kind


#: A date or a period as a message parameter: written out by the reader's language (2024年1月1日至2024年6月30日,
#: 1 January 2024 to 30 June 2024; :class:`zhizao.i18n.Formatter`), never as an ISO 8601 time stamp. The values
#: are ISO 8601 texts (a time stamp is the date it has at its own offset); a period's end is exclusive.
DAY = define("fmt.day", "%(date)s")
PERIOD = define("fmt.period", "%(start)s .. %(end)s")


def text(code: str, message: str) -> Message:
    """A message without a declared kind: ``message`` (English, used as is) under ``code``.

    For texts that cannot be declared in advance; they are shown untranslated, so prefer :func:`define`.
    """
    return Message(code, message.replace("%", "%%"))


def dumps(messages) -> str:
    """JSON text of a list of messages (English texts beside codes and parameters)."""
    return json.dumps([m.to_dict() for m in messages], ensure_ascii=False)


def loads(data) -> list[Message]:
    """The messages of :func:`dumps` (text, or the already parsed list)."""
    items = json.loads(data) if isinstance(data, (str, bytes)) else (data or [])
    return [Message.from_dict(d) for d in items]


__all__ = ["DAY", "KINDS", "PERIOD", "Message", "MessageKind", "define", "dumps", "loads", "text"]
