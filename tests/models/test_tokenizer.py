"""Tests for lightgrad.models.tokenizer.

Oracles: the `regex` package runs GPT-2's pre-tokenization pattern as written; Hugging Face
`tokenizers` (and `tiktoken`, when installed) encode with the same vocab.json/merges.txt.
"""

from __future__ import annotations

import json
import random
import sys
import unicodedata

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightgrad.models.tokenizer import (
    EOT,
    GPT2_PATTERN,
    BPETokenizer,
    CharTokenizer,
    bytes_to_unicode,
    pretokenize,
)

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Characters unassigned in this Python's Unicode database are left out of the oracle
# comparisons: the oracles may know a newer Unicode version in which they are letters.
_ASSIGNED = st.characters(exclude_categories=("Cs", "Cn"))
# Bias towards what the pattern cares about: spaces, apostrophes, contraction letters, digits.
_INTERESTING = st.sampled_from(list(" \t\n\r'sStdmlrve07.,!?-_\x1c\xa0\u3000\u2028é😀\u0301中"))
TEXT = st.text(alphabet=st.one_of(_INTERESTING, _ASSIGNED), max_size=60)

CURATED = [
    "",
    " ",
    "   ",
    "\n",
    "Hello world",
    "Hello  world",
    "Hello   world  ",
    "  leading and trailing  ",
    "tabs\tand\t\tnewlines\n\n\nhere\r\n",
    "it's, they're, we've, I'm, you'll, he'd, don't, DON'T, 'S 'T",
    "''s 's's ' s '",
    "x'llama '\x00",
    "12345 678 9,000.01 1e-9 ½ ² ①",
    "naïve café résumé e\u0301 a\u0308",
    "中文字符，日本語のテキスト、한국어",
    "emoji 🙂🙂 👩‍👩‍👧 🇫🇷 ✔️",
    "\x00\x01\x1b[31mred\x1b[0m \x7f",
    "\x1c\x1d\x1e\x1f separators \x85 nel \xa0 nbsp \u3000 ideographic",
    "line\u2028sep\u2029para",
    "def f(x):\n    return x ** 2  # square\n",
    "<|endoftext|> is plain text here",
    "The quick brown fox jumps over the lazy dog." * 3,
]

CORPUS = "\n".join(
    [
        "First Citizen:\nBefore we proceed any further, hear me speak.\n",
        "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?",
        "It's the lowest, newest, widest; they're lower, newer, wider. We'll see, we'd know.",
        "In 1999 there were 12345 cats and 678 dogs; 3.14159 is pi, 2.71828 is e.",
        "    indented code:\n        for i in range(10):\n            print(i ** 2)\n",
        "Ünïcödé wörds, naïve café, 中文字符 and emoji 🙂🙂🙂 👍🏽 are bytes too.",
    ]
) * 30 + "".join(CURATED) * 5


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer().train(CORPUS, vocab_size=600)


@pytest.fixture(scope="module")
def bpe_dir(bpe, tmp_path_factory):
    d = tmp_path_factory.mktemp("bpe")
    bpe.save(d)
    return d


# --------------------------------------------------------------------------------------------
# pre-tokenization
# --------------------------------------------------------------------------------------------


def test_pretokenize_examples():
    assert pretokenize("Hello world") == ["Hello", " world"]
    assert pretokenize("Hello   world") == ["Hello", "  ", " world"]  # lookahead leaves a space
    assert pretokenize("a  \n b") == ["a", "  \n", " b"]
    assert pretokenize("trailing   ") == ["trailing", "   "]  # at the end, all whitespace
    assert pretokenize("a\n\nb") == ["a", "\n", "\n", "b"]  # only " " joins the next word
    assert pretokenize("it's they'RE") == ["it", "'s", " they", "'", "RE"]
    assert pretokenize("x!'s") == ["x", "!'", "s"]  # contractions only start a match
    assert pretokenize("abc123 456") == ["abc", "123", " 456"]
    assert pretokenize(" ?! ") == [" ?!", " "]
    assert pretokenize("\x1c\x1c") == ["\x1c\x1c"]  # not White_Space: punctuation-like
    assert "".join(pretokenize(CORPUS)) == CORPUS


@SETTINGS
@given(TEXT)
def test_pretokenize_matches_regex_package(text):
    regex = pytest.importorskip("regex")
    assert pretokenize(text) == regex.findall(GPT2_PATTERN, text)


def test_pretokenize_matches_regex_package_on_every_character():
    """Each assigned character between others shows its class: letter, number, space, other."""
    regex = pytest.importorskip("regex")
    chars = (chr(c) for c in range(sys.maxunicode + 1))
    text = "".join(f"x{c}{c}1" for c in chars if unicodedata.category(c) not in ("Cs", "Cn"))
    assert pretokenize(text) == regex.findall(GPT2_PATTERN, text)


def test_bytes_to_unicode():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"


# --------------------------------------------------------------------------------------------
# CharTokenizer
# --------------------------------------------------------------------------------------------


def test_char_basics():
    tok = CharTokenizer("hello world")
    assert tok.vocab_size == 8
    assert tok.chars == sorted(set("hello world"))
    assert tok.decode(tok.encode("hello")) == "hello"
    assert tok.decode(np.array(tok.encode("low"), dtype=np.int64)) == "low"


@SETTINGS
@given(st.data())
def test_char_round_trip(data):
    alphabet = data.draw(st.text(min_size=1))
    tok = CharTokenizer(alphabet)
    text = data.draw(st.text(alphabet=sorted(set(alphabet))))
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


def test_char_save_load(tmp_path):
    tok = CharTokenizer("To be, or not to be: that is the question. 🙂\n")
    tok.save(tmp_path / "chars.json")
    loaded = CharTokenizer.load(tmp_path / "chars.json")
    assert loaded.chars == tok.chars
    assert loaded.encode("be or not") == tok.encode("be or not")
    kept = CharTokenizer.from_chars(["z", "a"])
    assert kept.encode("az") == [1, 0]


def test_char_errors(tmp_path):
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"character 'é' \(U\+00E9\) at position 2 was not in "
                                         r"the training text"):
        tok.encode("abé")
    with pytest.raises(ValueError, match=r"token id 3 at position 1 is out of range for a "
                                         r"vocabulary of 3 tokens \(valid ids are 0..2\)"):
        tok.decode([0, 3])
    with pytest.raises(ValueError, match="token id -1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="must be integers, got float"):
        tok.decode([1.0])
    with pytest.raises(ValueError, match=r"duplicate characters in vocabulary: \['a'\]"):
        CharTokenizer.from_chars(["a", "b", "a"])
    with pytest.raises(ValueError, match="single characters, got 'ab'"):
        CharTokenizer.from_chars(["ab"])
    with pytest.raises(FileNotFoundError, match="no file at .*missing.json"):
        CharTokenizer.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="is not a CharTokenizer file"):
        CharTokenizer.load(tmp_path / "bad.json")


# --------------------------------------------------------------------------------------------
# BPETokenizer: training, round trips, special tokens
# --------------------------------------------------------------------------------------------


def test_untrained_is_bytes():
    tok = BPETokenizer()
    assert tok.vocab_size == 257 and tok.eot_token == 256
    assert tok.encode("hé") == [104, 0xC3, 0xA9]
    assert tok.decode([104, 0xC3, 0xA9]) == "hé"


def test_train_merges_most_frequent_pair_first():
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=260)
    # aa (4 times), then ab and (aa, a) tie at 2: the smaller pair wins; then aa + ab
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.vocab_size == 260 and tok.eot_token == 259
    assert tok.token_bytes(258) == b"aaab"


def test_train_respects_chunks_and_vocab_size(bpe):
    assert bpe.vocab_size == 600 and bpe.eot_token == 599
    assert len(bpe.merges) == 600 - 257
    for i in range(256, 599):  # no merged token crosses a pre-tokenization boundary
        text = bpe.token_bytes(i).decode("utf-8", errors="ignore")
        assert len(pretokenize(text)) <= 1
    ids = bpe.encode(CORPUS)
    assert len(ids) < len(CORPUS.encode()) / 2
    assert bpe.decode(ids) == CORPUS


def test_train_is_deterministic(bpe):
    again = BPETokenizer().train(CORPUS, vocab_size=600)
    assert again.merges == bpe.merges


def test_train_runs_out_of_pairs():
    with pytest.warns(UserWarning, match="ran out of pairs to merge after 2 merges"):
        tok = BPETokenizer().train("abc", vocab_size=300)
    assert tok.vocab_size == 256 + 2 + 1
    assert tok.encode("abc") == [257]


@SETTINGS
@given(st.text())
def test_bpe_round_trip(bpe, text):
    ids = bpe.encode(text)
    assert all(0 <= i < bpe.vocab_size for i in ids)
    assert bpe.decode(ids) == text


@pytest.mark.parametrize("text", CURATED, ids=range(len(CURATED)))
def test_bpe_round_trip_curated(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_special_tokens(bpe):
    text = "one<|endoftext|>two"
    plain = bpe.encode(text)
    assert bpe.eot_token not in plain and bpe.decode(plain) == text
    assert plain == bpe.encode_ordinary(text)
    for allowed in ("all", {EOT}, [EOT]):
        ids = bpe.encode(text, allowed_special=allowed)
        assert ids == bpe.encode("one") + [bpe.eot_token] + bpe.encode("two")
        assert bpe.decode(ids) == text
    with pytest.raises(ValueError, match=r"allowed_special has \['<\|im_start\|>'\], which are "
                                         r"not special tokens"):
        bpe.encode(text, allowed_special={"<|im_start|>"})


def test_decode_errors(bpe):
    with pytest.raises(ValueError, match=r"token id 600 at position 0 is out of range for a "
                                         r"vocabulary of 600 tokens \(valid ids are 0..599\)"):
        bpe.decode([600])
    with pytest.raises(ValueError, match="token id -3 at position 1"):
        bpe.decode([1, -3])
    with pytest.raises(TypeError, match="must be integers, got str"):
        bpe.decode(["a"])
    assert bpe.decode(np.array(bpe.encode("numpy ids"))) == "numpy ids"
    assert bpe.decode([0xE2, 0x82]) == "\ufffd"  # a cut character, as in GPT-2


def test_train_errors():
    with pytest.raises(ValueError, match="vocab_size must be at least 257.*got 100"):
        BPETokenizer().train("text", vocab_size=100)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def test_save_load_round_trip(bpe, bpe_dir, tmp_path):
    vocab = json.loads((bpe_dir / "vocab.json").read_text(encoding="utf-8"))
    assert len(vocab) == bpe.vocab_size and vocab[EOT] == bpe.eot_token
    assert vocab["Ġ"] == ord(" ")
    lines = (bpe_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#version: 0.2" and len(lines) == 1 + len(bpe.merges)

    loaded = BPETokenizer.from_pretrained(bpe_dir)
    assert loaded.vocab_size == bpe.vocab_size and loaded.eot_token == bpe.eot_token
    assert loaded.merges == bpe.merges
    for text in CURATED:
        assert loaded.encode(text) == bpe.encode(text)
    assert BPETokenizer.load(bpe_dir).encode(CORPUS) == bpe.encode(CORPUS)

    loaded.save(tmp_path)
    for name in ("vocab.json", "merges.txt"):
        assert (tmp_path / name).read_bytes() == (bpe_dir / name).read_bytes()


def _write(d, vocab, merges):
    d.mkdir(exist_ok=True)
    (d / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (d / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    return d


def test_load_errors(bpe_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"empty has no vocab.json or merges.txt; "
                                                r"expected GPT-2's vocab.json"):
        BPETokenizer.from_pretrained(tmp_path / "empty")
    half = tmp_path / "half"
    half.mkdir()
    (half / "vocab.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="half has no merges.txt"):
        BPETokenizer.from_pretrained(half)

    vocab = json.loads((bpe_dir / "vocab.json").read_text(encoding="utf-8"))
    with pytest.raises(ValueError, match=r"merges.txt line 2: expected two tokens separated by "
                                         r"one space, got 'a b c'"):
        BPETokenizer.from_pretrained(_write(tmp_path / "m1", vocab, ["#version: 0.2", "a b c"]))
    with pytest.raises(ValueError, match="line 1: expected two tokens"):
        BPETokenizer.from_pretrained(_write(tmp_path / "m2", vocab, ["ab"]))
    with pytest.raises(ValueError, match=r"line 1 \('q z'\): token 'qz' is not in vocab.json"):
        BPETokenizer.from_pretrained(_write(tmp_path / "m3", vocab, ["q z"]))

    small = {k: v for k, v in vocab.items() if k != "Ā"}  # byte 0
    with pytest.raises(ValueError, match="lacks 1 of the 256 single-byte tokens, e.g. 'Ā'"):
        BPETokenizer.from_pretrained(_write(tmp_path / "v1", small, []))
    with pytest.raises(ValueError, match="token '▁the' has '▁', which is not in GPT-2's byte"):
        BPETokenizer.from_pretrained(_write(tmp_path / "v2", {**vocab, "▁the": 9999}, []))
    with pytest.raises(ValueError, match="id 5 is used twice"):
        BPETokenizer.from_pretrained(_write(tmp_path / "v3", {**vocab, "zzz": 5}, []))
    _write(tmp_path / "v4", [], [])
    with pytest.raises(ValueError, match="must hold a JSON object"):
        BPETokenizer.from_pretrained(tmp_path / "v4")


# --------------------------------------------------------------------------------------------
# GPT-2 exactness: Hugging Face tokenizers and tiktoken with the same files
# --------------------------------------------------------------------------------------------


def _hf_gpt2(directory):
    """GPT-2's tokenizer as Hugging Face builds it: ByteLevel BPE, no prefix space."""
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers

    tok = tokenizers.Tokenizer(
        models.BPE.from_file(str(directory / "vocab.json"), str(directory / "merges.txt"))
    )
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


@pytest.fixture(scope="module")
def hf(bpe_dir):
    return _hf_gpt2(bpe_dir)


@pytest.fixture(scope="module")
def shuffled_dir(bpe_dir, tmp_path_factory):
    """The same tokenizer with ids permuted, like GPT-2's files where byte ids are not bytes."""
    vocab = json.loads((bpe_dir / "vocab.json").read_text(encoding="utf-8"))
    ids = list(vocab.values())
    random.Random(0).shuffle(ids)
    d = tmp_path_factory.mktemp("shuffled")
    merges = (bpe_dir / "merges.txt").read_text(encoding="utf-8").splitlines()
    return _write(d, dict(zip(vocab, ids)), merges)


@pytest.mark.parametrize("text", CURATED + [CORPUS], ids=range(len(CURATED) + 1))
def test_matches_hf_tokenizers(bpe, bpe_dir, hf, shuffled_dir, text):
    assert bpe.encode(text) == hf.encode(text).ids
    assert BPETokenizer.from_pretrained(bpe_dir).encode(text) == hf.encode(text).ids
    shuffled_hf = _hf_gpt2(shuffled_dir)
    shuffled = BPETokenizer.from_pretrained(shuffled_dir)
    ids = shuffled.encode(text)
    assert ids == shuffled_hf.encode(text).ids
    assert shuffled.decode(ids) == text


@SETTINGS
@given(TEXT)
def test_matches_hf_tokenizers_hypothesis(bpe, hf, text):
    ids = bpe.encode(text)
    assert ids == hf.encode(text).ids
    assert hf.decode(ids) == bpe.decode(ids)


def test_matches_tiktoken(bpe):
    tiktoken = pytest.importorskip("tiktoken")
    ranks = {bpe.token_bytes(i): i for i in range(bpe.vocab_size) if i != bpe.eot_token}
    enc = tiktoken.Encoding("lightgrad-test", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={EOT: bpe.eot_token})
    for text in CURATED + [CORPUS]:
        assert bpe.encode(text) == enc.encode_ordinary(text)
        assert bpe.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
