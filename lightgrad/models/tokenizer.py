"""Tokenizers for the GPT chapter: characters and GPT-2's byte-level BPE.

A language model reads integers, not text. A tokenizer is the pair of maps
between the two: ``encode(str) -> list[int]`` and ``decode(list[int]) -> str``.

``CharTokenizer`` gives every distinct character of a training text its own id.
It is the simplest tokenizer there is, and enough to train a small GPT on
Shakespeare.

``BPETokenizer`` is GPT-2's byte-level byte-pair encoding:

1. Pre-tokenize: split the text into chunks (words with their leading space,
   runs of digits, runs of punctuation, runs of whitespace) with GPT-2's
   pattern, see :func:`pretokenize`. Merges never cross a chunk boundary.
2. Start from the 256 byte values of each chunk's UTF-8 encoding, so any
   string can be encoded and nothing is ever "unknown".
3. Apply the learned merges, lowest rank (earliest learned) first: each
   merge replaces an adjacent pair of tokens by a single new token.

Training learns the merges: repeatedly count adjacent pairs over the training
chunks and merge the most frequent one. ``save``/``from_pretrained`` use
GPT-2's own file format (``vocab.json`` + ``merges.txt``), so the tokenizer of
the real GPT-2 checkpoint loads and encodes exactly as OpenAI's code does.

>>> tok = BPETokenizer().train("low lower lowest " * 20, vocab_size=260)
>>> ids = tok.encode("lowest low")
>>> tok.decode(ids)
'lowest low'
"""

from __future__ import annotations

import functools
import heapq
import json
import operator
import re
import sys
import unicodedata
import warnings
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Literal

__all__ = ["BPETokenizer", "CharTokenizer", "bytes_to_unicode", "pretokenize"]

EOT = "<|endoftext|>"
"""GPT-2's end-of-text token, placed between documents in the training data."""


def _as_ids(ids: Iterable[int], who: str, valid: Collection[int], size: int) -> list[int]:
    """Check that every id is an integer in ``valid``; works for lists and numpy arrays."""
    out = []
    for pos, i in enumerate(ids):
        try:
            i = operator.index(i)
        except TypeError:
            raise TypeError(
                f"{who}: token ids must be integers, got {type(i).__name__} {i!r} "
                f"at position {pos}"
            ) from None
        if i not in valid:
            raise ValueError(
                f"{who}: token id {i} at position {pos} is out of range for a vocabulary "
                f"of {size} tokens (valid ids are 0..{size - 1})"
            )
        out.append(i)
    return out


# --------------------------------------------------------------------------------------------
# Character-level tokenizer
# --------------------------------------------------------------------------------------------


class CharTokenizer:
    """One token per distinct character of the training text, ids in sorted order.

    >>> tok = CharTokenizer("hello world")
    >>> tok.vocab_size
    8
    >>> tok.encode("hello")
    [3, 2, 4, 4, 5]
    >>> tok.decode([7, 5, 6, 4, 1])
    'world'
    """

    def __init__(self, text: str) -> None:
        self._set_chars(sorted(set(text)))

    @classmethod
    def from_chars(cls, chars: Iterable[str]) -> CharTokenizer:
        """Build a tokenizer whose id ``i`` is ``chars[i]`` (order kept, not sorted)."""
        tok = cls.__new__(cls)
        tok._set_chars(list(chars))
        return tok

    def _set_chars(self, chars: list[str]) -> None:
        for c in chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"CharTokenizer: vocabulary entries must be single characters, "
                                 f"got {c!r}")
        if len(set(chars)) != len(chars):
            dupes = sorted(c for c, n in Counter(chars).items() if n > 1)
            raise ValueError(f"CharTokenizer: duplicate characters in vocabulary: {dupes!r}")
        self.chars: list[str] = chars
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens (characters)."""
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """Map each character to its id; a character never seen in training is an error."""
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            pos = next(i for i, c in enumerate(text) if c not in self.stoi)
            c = text[pos]
            raise ValueError(
                f"CharTokenizer.encode: character {c!r} (U+{ord(c):04X}) at position {pos} was "
                f"not in the training text; the vocabulary has {self.vocab_size} characters"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Map ids back to characters and join them."""
        ids = _as_ids(ids, "CharTokenizer.decode", range(self.vocab_size), self.vocab_size)
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as JSON: ``{"type": "char", "chars": [...]}``."""
        data = {"type": "char", "chars": self.chars}
        Path(path).write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"CharTokenizer.load: no file at {path} (expected the JSON "
                                    f"file written by CharTokenizer.save)")
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("chars"), list):
            raise ValueError(f"CharTokenizer.load: {path} is not a CharTokenizer file "
                             f'(expected a JSON object with a "chars" list)')
        return cls.from_chars(data["chars"])

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


# --------------------------------------------------------------------------------------------
# GPT-2 pre-tokenization
# --------------------------------------------------------------------------------------------

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
"""GPT-2's pre-tokenization pattern, written for the third-party ``regex`` package."""

# Unicode's White_Space property: what \s means in the `regex` package (and in Rust, Oniguruma).
# Python's `re` \s (str.isspace) also accepts the separators U+001C..U+001F; GPT-2 does not.
_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


@functools.lru_cache(maxsize=1)
def _gpt2_regex() -> re.Pattern[str]:
    r"""GPT2_PATTERN for Python's `re`, which has no ``\p{L}`` (letter) or ``\p{N}`` (number).

    We build those two classes ourselves from ``unicodedata.category`` (one pass over all
    code points, a quarter of a second, done once) and spell ``\s`` as Unicode's White_Space.
    """
    ranges: dict[str, list[list[int]]] = {"L": [], "N": []}
    category = unicodedata.category
    for cp in range(sys.maxunicode + 1):
        rs = ranges.get(category(chr(cp))[0])
        if rs is None:
            continue
        if rs and rs[-1][1] == cp - 1:
            rs[-1][1] = cp
        else:
            rs.append([cp, cp])
    L, N = ("".join(f"\\U{lo:08x}-\\U{hi:08x}" for lo, hi in ranges[k]) for k in "LN")
    S = _WHITESPACE
    return re.compile(
        rf"'s|'t|'re|'ve|'m|'ll|'d| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+|[{S}]+(?![^{S}])|[{S}]+"
    )


def pretokenize(text: str) -> list[str]:
    """Split text into chunks exactly as GPT-2's pattern does; BPE merges stay inside chunks.

    Letters, numbers and other symbols form separate runs, each taking at most one leading
    space. A run of whitespace before a word leaves its last space to the word.

    >>> pretokenize("Hello world, it's 2024!\\n\\n   Bye")
    ['Hello', ' world', ',', ' it', "'s", ' 2024', '!', '\\n\\n  ', ' Bye']
    """
    return _gpt2_regex().findall(text)


# --------------------------------------------------------------------------------------------
# Byte-level BPE
# --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable character, used in vocab.json and merges.txt.

    Printable Latin-1 bytes map to themselves; the others (control characters, space, ...)
    map to the characters from U+0100 upwards, so a token is always a visible, space-free
    string: a leading space shows as 'Ġ', a newline as 'Ċ'.

    >>> bytes_to_unicode()[ord("a")], bytes_to_unicode()[ord(" ")], bytes_to_unicode()[10]
    ('a', 'Ġ', 'Ċ')
    """
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
          *range(ord("®"), ord("ÿ") + 1)]
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def _merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids``, left to right."""
    a, b = pair
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


_NO_MERGE = (float("inf"), -1)


class BPETokenizer:
    """GPT-2's byte-level byte-pair-encoding tokenizer.

    A new tokenizer knows only the 256 bytes (id = byte value) and ``<|endoftext|>`` (id 256);
    :meth:`train` learns merges from text, :meth:`from_pretrained` reads GPT-2's files.

    >>> tok = BPETokenizer().train("the cat sat on the mat. " * 50, vocab_size=264)
    >>> tok.vocab_size
    264
    >>> len(tok.encode("the cat")) < len("the cat".encode())
    True
    >>> tok.decode(tok.encode("naïve café 🙂"))
    'naïve café 🙂'
    >>> tok.encode("a<|endoftext|>b", allowed_special="all")[1] == tok.eot_token
    True
    """

    _CACHE_SIZE = 1 << 16

    def __init__(self) -> None:
        vocab = [bytes([b]) for b in range(256)]
        self._init(vocab, list(range(256)), {}, {EOT: 256})

    def _init(self, vocab: list[bytes] | dict[int, bytes], byte_ids: list[int],
              merges: dict[tuple[int, int], tuple[int, int]],
              special_tokens: dict[str, int]) -> None:
        if isinstance(vocab, list):
            vocab = dict(enumerate(vocab))
        self._id_to_bytes: dict[int, bytes] = dict(vocab)
        for s, i in special_tokens.items():
            self._id_to_bytes[i] = s.encode("utf-8")
        self._byte_ids = byte_ids  # token id of each single byte 0..255
        self._merges = merges  # (left id, right id) -> (rank, merged id)
        self.special_tokens = special_tokens  # e.g. {"<|endoftext|>": 50256}
        self._vocab_size = max(self._id_to_bytes) + 1
        self._special_re: dict[frozenset[str], re.Pattern[str]] = {}
        self._cache: dict[str, list[int]] = {}

    # ---- vocabulary ----------------------------------------------------------------------

    @property
    def vocab_size(self) -> int:
        """Number of token ids (bytes, merges and special tokens); ids are 0..vocab_size-1."""
        return self._vocab_size

    @property
    def eot_token(self) -> int | None:
        """Id of ``<|endoftext|>``, or None when the vocabulary has no such token."""
        return self.special_tokens.get(EOT)

    @property
    def merges(self) -> list[tuple[int, int]]:
        """The learned merges as (left id, right id) pairs, in rank order."""
        return sorted(self._merges, key=lambda p: self._merges[p][0])

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes a token stands for: ``tok.token_bytes(tok.encode(" the")[0]) == b" the"``."""
        return self._id_to_bytes[_as_ids([token_id], "BPETokenizer.token_bytes",
                                          self._id_to_bytes, self.vocab_size)[0]]

    # ---- training ------------------------------------------------------------------------

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> BPETokenizer:
        """Learn ``vocab_size - 257`` merges from ``text``; returns ``self``.

        The vocabulary is the 256 bytes (id = byte value), then one id per merge, then
        ``<|endoftext|>`` as the last id. Pairs are counted once per distinct chunk, weighted
        by how often the chunk occurs, and only the words containing the merged pair are
        re-counted after each merge, so a megabyte of text trains in seconds.
        """
        if vocab_size < 257:
            raise ValueError(f"BPETokenizer.train: vocab_size must be at least 257 (256 bytes "
                             f"and {EOT}), got {vocab_size}")
        chunk_counts = Counter(pretokenize(text))
        words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
        freqs = list(chunk_counts.values())

        counts: dict[tuple[int, int], int] = defaultdict(int)  # pair -> occurrences
        where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> words holding it
        for wi, (w, f) in enumerate(zip(words, freqs)):
            for pair in zip(w, w[1:]):
                counts[pair] += f
                where[pair].add(wi)
        # Max-heap of (-count, pair); an entry is stale once counts[pair] has moved on.
        heap = [(-c, p) for p, c in counts.items()]
        heapq.heapify(heap)

        vocab = [bytes([b]) for b in range(256)]
        ids_of = {v: i for i, v in enumerate(vocab)}
        merges: dict[tuple[int, int], tuple[int, int]] = {}
        n_merges = vocab_size - 257
        while len(vocab) < 256 + n_merges:
            while heap and counts.get(heap[0][1]) != -heap[0][0]:
                heapq.heappop(heap)
            if not heap:
                warnings.warn(f"BPETokenizer.train: the text ran out of pairs to merge after "
                              f"{len(merges)} merges; vocab_size is {len(vocab) + 1}, not "
                              f"{vocab_size}", stacklevel=2)
                break
            neg, pair = heapq.heappop(heap)
            new_bytes = vocab[pair[0]] + vocab[pair[1]]
            new_id = ids_of.get(new_bytes)
            if new_id is None:  # a token can (rarely) be reached by two different merges
                new_id = ids_of[new_bytes] = len(vocab)
                vocab.append(new_bytes)
            if pair not in merges:  # (a pair can reappear only through such a reused token)
                merges[pair] = (len(merges), new_id)
            if verbose:
                print(f"merge {len(merges)}/{n_merges}: {pair} -> {new_id} {new_bytes!r} "
                      f"({-neg} occurrences)")

            delta: dict[tuple[int, int], int] = defaultdict(int)
            for wi in where.pop(pair, ()):
                old = words[wi]
                new = _merge(old, pair, new_id)
                if len(new) == len(old):  # stale entry: the pair is gone from this word
                    continue
                f = freqs[wi]
                for p in zip(old, old[1:]):
                    delta[p] -= f
                for p in zip(new, new[1:]):
                    delta[p] += f
                    where[p].add(wi)
                words[wi] = new
            for p, d in delta.items():
                if d:
                    counts[p] += d
                    if counts[p] > 0:
                        heapq.heappush(heap, (-counts[p], p))
                    else:
                        del counts[p]
            counts.pop(pair, None)

        self._init(vocab, list(range(256)), merges, {EOT: len(vocab)})
        return self

    # ---- encoding and decoding -----------------------------------------------------------

    def _encode_chunk(self, chunk: str) -> list[int]:
        """BPE one pre-tokenized chunk: apply the lowest-ranked merge present until none is."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = [self._byte_ids[b] for b in chunk.encode("utf-8")]
        merges = self._merges
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: merges.get(p, _NO_MERGE)[0])
            if pair not in merges:
                break
            ids = _merge(ids, pair, merges[pair][1])
        if len(self._cache) >= self._CACHE_SIZE:
            self._cache.clear()
        self._cache[chunk] = ids
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode text, treating special-token strings like ``<|endoftext|>`` as plain text."""
        ids: list[int] = []
        for chunk in pretokenize(text):
            ids.extend(self._encode_chunk(chunk))
        return ids

    def encode(self, text: str,
               allowed_special: Literal["all"] | Collection[str] = frozenset()) -> list[int]:
        """Encode text to token ids.

        Special tokens are recognised only when listed in ``allowed_special`` (or when it is
        ``"all"``); otherwise ``"<|endoftext|>"`` in the text is encoded as ordinary text, as
        GPT-2's own encoder does. Text between special tokens is pre-tokenized separately.
        """
        if allowed_special == "all":
            allowed = frozenset(self.special_tokens)
        else:
            allowed = frozenset(allowed_special)
            unknown = allowed - set(self.special_tokens)
            if unknown:
                raise ValueError(f"BPETokenizer.encode: allowed_special has {sorted(unknown)!r}, "
                                 f"which are not special tokens of this vocabulary "
                                 f"(it has {sorted(self.special_tokens)!r})")
        if not allowed:
            return self.encode_ordinary(text)
        pattern = self._special_re.get(allowed)
        if pattern is None:
            alternatives = "|".join(re.escape(s) for s in sorted(allowed, key=len, reverse=True))
            pattern = self._special_re[allowed] = re.compile(f"({alternatives})")
        ids: list[int] = []
        for k, part in enumerate(pattern.split(text)):  # odd parts are the special tokens
            if k % 2:
                ids.append(self.special_tokens[part])
            else:
                ids.extend(self.encode_ordinary(part))
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Join the tokens' bytes and decode them as UTF-8.

        Bytes that do not form valid UTF-8 (a slice that cuts a character in two) become
        U+FFFD, as in GPT-2; the ids of ``encode(s)`` always decode back to ``s``.
        """
        ids = _as_ids(ids, "BPETokenizer.decode", self._id_to_bytes, self.vocab_size)
        return b"".join(self._id_to_bytes[i] for i in ids).decode("utf-8", errors="replace")

    # ---- files ---------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write GPT-2's format: ``vocab.json`` (token -> id) and ``merges.txt`` (ranked pairs).

        Token strings are bytes spelled with :func:`bytes_to_unicode`. The files load with
        :meth:`from_pretrained`, Hugging Face ``tokenizers`` and ``transformers``' GPT2Tokenizer.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        b2u = bytes_to_unicode()

        def spell(i: int) -> str:
            return "".join(b2u[b] for b in self._id_to_bytes[i])

        vocab = {spell(i): i for i in sorted(self._id_to_bytes)}
        vocab.update(self.special_tokens)
        (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False),
                                              encoding="utf-8")
        lines = ["#version: 0.2"] + [f"{spell(a)} {spell(b)}" for a, b in self.merges]
        (directory / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> BPETokenizer:
        """Read GPT-2's ``vocab.json`` and ``merges.txt`` from a directory.

        This is the format of the ``gpt2`` checkpoint on the Hugging Face Hub and of
        :meth:`save`. Encoding then matches GPT-2's reference encoder token for token.
        """
        directory = Path(directory)
        vocab_path, merges_path = directory / "vocab.json", directory / "merges.txt"
        missing = [p.name for p in (vocab_path, merges_path) if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"BPETokenizer.from_pretrained: {directory} has no {' or '.join(missing)}; "
                f"expected GPT-2's vocab.json (token -> id) and merges.txt (one merge per line)"
            )
        vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
        if not isinstance(vocab, dict):
            raise ValueError(f"BPETokenizer.from_pretrained: {vocab_path} must hold a JSON "
                             f"object mapping token strings to ids")

        u2b = {u: b for b, u in bytes_to_unicode().items()}
        id_to_bytes: dict[int, bytes] = {}
        for token, i in vocab.items():
            if not isinstance(i, int) or i < 0:
                raise ValueError(f"BPETokenizer.from_pretrained: {vocab_path}: token {token!r} "
                                 f"has id {i!r}; ids must be non-negative integers")
            bad = [c for c in token if c not in u2b]
            if bad:
                raise ValueError(f"BPETokenizer.from_pretrained: {vocab_path}: token {token!r} "
                                 f"has {bad[0]!r}, which is not in GPT-2's byte-to-unicode "
                                 f"alphabet; is this a byte-level BPE vocabulary?")
            if i in id_to_bytes:
                raise ValueError(f"BPETokenizer.from_pretrained: {vocab_path}: id {i} is used "
                                 f"twice")
            id_to_bytes[i] = bytes(u2b[c] for c in token)
        b2u = bytes_to_unicode()
        absent = [b2u[b] for b in range(256) if b2u[b] not in vocab]
        if absent:
            raise ValueError(f"BPETokenizer.from_pretrained: {vocab_path} lacks "
                             f"{len(absent)} of the 256 single-byte tokens, e.g. {absent[0]!r}")
        byte_ids = [vocab[b2u[b]] for b in range(256)]

        merges: dict[tuple[int, int], tuple[int, int]] = {}
        lines = merges_path.read_text(encoding="utf-8").split("\n")
        for lineno, line in enumerate(lines, start=1):
            if not line or (lineno == 1 and line.startswith("#version")):
                continue
            parts = line.split(" ")
            if len(parts) != 2 or not all(parts):
                raise ValueError(f"BPETokenizer.from_pretrained: {merges_path} line {lineno}: "
                                 f"expected two tokens separated by one space, got {line!r}")
            for token in (*parts, parts[0] + parts[1]):
                if token not in vocab:
                    raise ValueError(f"BPETokenizer.from_pretrained: {merges_path} line "
                                     f"{lineno} ({line!r}): token {token!r} is not in "
                                     f"vocab.json")
            merges[vocab[parts[0]], vocab[parts[1]]] = (lineno, vocab[parts[0] + parts[1]])

        special = {EOT: vocab[EOT]} if EOT in vocab else {}
        tok = cls.__new__(cls)
        tok._init(id_to_bytes, byte_ids, merges, special)
        return tok

    load = from_pretrained

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self._merges)})"
