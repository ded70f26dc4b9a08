"""Controlled vocabularies of the register: codes with Chinese and English labels, as data files.

Each vocabulary is a YAML file in ``portfolio/data/vocabularies/`` (a programme office may point
``ZHIZAO_VOCABULARIES`` to a folder of its own files, which replace the shipped ones of the same name)::

    vocabulary: level
    title: {zh: 级别, en: Level}
    version: "1"
    source: where the codes and names come from
    ordered: true                  # the entries are in a meaningful order (statuses, levels)
    pad_digits: 2                  # optional: a bare number is a code with leading zeros (1 -> "01")
    match_stems: {zh: [区], en: [" District"]}   # optional: labels may be written without these endings
    entries:
      - {code: district, zh: 区级, en: District level, aliases: [区县级]}

A value in a file may be the code, the Chinese or English label or an alias (compared after Unicode NFKC
normalisation, so full-width and half-width forms are equal, ignoring case and surrounding spaces); the
register stores the code. An entry's ``en`` may be null where no official English name exists: the Chinese
label is shown then.

Vocabularies: ``project_type``, ``project_status``, ``designation``, ``level``, ``industry`` (GB/T 4754-2017),
``district``, ``scope_kind``, ``target_measure``.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import yaml

from zhizao.errors import InputError, NotFound
from zhizao.messages import define

DATA = Path(__file__).parent / "data" / "vocabularies"
UNKNOWN_VOCABULARY = define("vocabulary.unknown", "unknown vocabulary %(name)s; vocabularies: %(known)s")
UNKNOWN_VALUE = define("vocabulary.unknown_value",
                       "%(value)s is not a known %(what)s; give a code or a label, e.g. %(examples)s")
BAD_FILE = define("vocabulary.bad_file", "vocabulary file %(file)s: %(error)s")
#: The names of the shipped vocabularies in messages (their files carry the same titles as data).
TITLES = {n: define(f"vocabulary.title.{n}", t) for n, t in (
    ("project_type", "project type"), ("project_status", "project status"), ("designation", "designation"),
    ("level", "level (district, municipal, national)"), ("industry", "industry (GB/T 4754-2017)"),
    ("district", "district"),
    ("scope_kind", "kind of scope"), ("target_measure", "target measure"))}


def _norm(text) -> str:
    return " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()


@dataclass(frozen=True)
class Entry:
    """One code of a vocabulary."""

    code: str
    zh: str
    en: str | None
    aliases: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def label(self, lang: str = "zh") -> str:
        """The label in ``lang`` (the Chinese one where there is no English one)."""
        return (self.en or self.zh) if lang == "en" else self.zh


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """A controlled vocabulary (see the module docstring)."""

    name: str
    title: dict
    version: str
    source: str
    entries: tuple[Entry, ...]
    ordered: bool = False
    pad_digits: int | None = None
    stems: dict = field(default_factory=dict)
    path: str = ""

    @property
    def codes(self) -> list[str]:
        return [e.code for e in self.entries]

    def entry(self, code: str) -> Entry | None:
        return self._by_code().get(code)

    def _by_code(self) -> dict:
        return self._index[0]

    @cached_property
    def _index(self) -> tuple[dict, dict]:
        return _index(self)

    def match(self, value) -> str | None:
        """The code of ``value`` (a code, a label or an alias), or None when it matches nothing.

        Empty values are None as well; call :meth:`normalise` to have an unknown value refused.
        """
        if value is None:
            return None
        text = str(value).strip()
        if not text:
            return None
        if text in self._by_code():
            return text
        if self.pad_digits and text.isdigit() and len(text) < self.pad_digits:
            text = text.zfill(self.pad_digits)
            if text in self._by_code():
                return text
        return self._index[1].get(_norm(text))

    def normalise(self, value) -> str | None:
        """The code of ``value``; None for an empty value.

        Raises
        ------
        zhizao.errors.InputError
            For a value that matches no entry (the message gives examples of codes and labels).
        """
        if value is None or not str(value).strip():
            return None
        code = self.match(value)
        if code is None:
            raise InputError(self.unknown(value))
        return code

    def unknown(self, value):
        """The message for an unknown ``value``."""
        step = max(1, len(self.entries) // 4)
        ex = [f"{e.code} ({e.zh})" for e in self.entries[::step][:4]]
        kind = TITLES.get(self.name)
        what = kind() if kind is not None else self.title.get("en", self.name)
        return UNKNOWN_VALUE(value=str(value), what=what, examples=ex)

    def label(self, code, lang: str = "zh") -> str:
        """The label of ``code`` in ``lang``; an unknown code (an old record) is shown as it is."""
        if code is None or (isinstance(code, float) and code != code):
            return ""
        e = self.entry(str(code))
        return e.label(lang) if e is not None else str(code)

    def labels(self, lang: str = "zh") -> dict[str, str]:
        """code -> label in ``lang``, in the file's order."""
        return {e.code: e.label(lang) for e in self.entries}

    def rank(self, code) -> int:
        """Position of ``code`` in the file (unknown codes last)."""
        try:
            return self.codes.index(code)
        except ValueError:
            return len(self.entries)

    def to_dict(self) -> dict:
        return {"vocabulary": self.name, "title": self.title, "version": self.version, "source": self.source,
                "ordered": self.ordered,
                "entries": [{"code": e.code, "zh": e.zh, "en": e.en, "aliases": list(e.aliases), **e.extra}
                            for e in self.entries]}


def _index(v: Vocabulary) -> tuple[dict, dict]:
    by_code = {e.code: e for e in v.entries}
    by_text: dict[str, str] = {}
    for e in v.entries:
        texts = [e.code, e.zh, *(e.aliases)] + ([e.en] if e.en else [])
        for lang, endings in (v.stems or {}).items():
            base = e.zh if lang == "zh" else e.en
            for end in endings or ():
                if base and base.endswith(end) and len(base) > len(end):
                    texts.append(base[: -len(end)])
        for t in texts:
            by_text.setdefault(_norm(t), e.code)
    return by_code, by_text


def folders() -> list[Path]:
    """Where vocabulary files are looked for: ``ZHIZAO_VOCABULARIES`` (if set) before the shipped folder."""
    extra = os.environ.get("ZHIZAO_VOCABULARIES")
    return ([Path(extra)] if extra else []) + [DATA]


def _parse(path: Path) -> Vocabulary:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        entries = []
        for d in doc["entries"]:
            d = dict(d)
            code = str(d.pop("code"))
            zh = str(d.pop("zh"))
            en = d.pop("en", None)
            aliases = tuple(str(a) for a in d.pop("aliases", None) or ())
            entries.append(Entry(code, zh, None if en is None else str(en), aliases, d))
        codes = [e.code for e in entries]
        if len(set(codes)) != len(codes):
            raise ValueError("a code occurs twice")
        return Vocabulary(str(doc["vocabulary"]), dict(doc.get("title") or {}), str(doc.get("version", "")),
                          " ".join(str(doc.get("source", "")).split()), tuple(entries), bool(doc.get("ordered")),
                          doc.get("pad_digits"), dict(doc.get("match_stems") or {}), str(path))
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise InputError(BAD_FILE(file=str(path), error=f"{type(e).__name__}: {e}")) from None


@cache
def _load(name: str, roots: tuple) -> Vocabulary:
    for root in roots:
        p = Path(root) / f"{name}.yaml"
        if p.is_file():
            return _parse(p)
    raise NotFound(UNKNOWN_VOCABULARY(name=name, known=names()))


def vocabulary(name: str) -> Vocabulary:
    """The vocabulary ``name`` (cached per file location).

    Raises
    ------
    zhizao.errors.NotFound
        No such vocabulary file.
    """
    return _load(name, tuple(str(f) for f in folders()))


def names() -> list[str]:
    """Names of the vocabularies available."""
    out = set()
    for f in folders():
        if f.is_dir():
            out |= {p.stem for p in f.glob("*.yaml")}
    return sorted(out)


def label(name: str, code, lang: str = "zh") -> str:
    """Shortcut: the label of ``code`` in vocabulary ``name``."""
    return vocabulary(name).label(code, lang)


__all__ = ["Entry", "Vocabulary", "folders", "label", "names", "vocabulary"]
