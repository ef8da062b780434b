#!/usr/bin/env python3
"""A tokenizer made locally whose every id decodes to visible text, at a real model's vocabulary size.

A randomly initialised model picks ids all over its vocabulary. The earlier GPU runs paired a 151,936-row
Qwen3-8B-shaped embedding with a 512-token tokenizer, so nearly every generated id had no token behind it and
decoded to nothing: chat replies were empty, no streamed chunk arrived, TTFT could not be measured. This
vocabulary fills every id: 3 ChatML specials, an unknown token, letters, digits, punctuation and their
WordPiece continuations, common English words (those the benchmark's prompts are made of among them), then
pronounceable made-up words up to the size asked for. WordPiece encodes any text (an unknown word falls back to
pieces) and decodes words with spaces between them, so a random model's output reads as (nonsense) words.

Standard library plus ``tokenizers`` only; no network, no download, deterministic.
"""

from __future__ import annotations

import itertools
import string
import sys
from collections.abc import Iterator
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "collections"))
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.checks import PROMPT_WORDS

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
SPECIALS_COUNT = len(SPECIALS)
UNK = "<unk>"
MARK = "\u2581"  # SentencePiece's word-start mark: decodes to a space
BYTES = tuple(f"<0x{b:02X}>" for b in range(256))
QWEN3_VOCAB = 151936
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# The benchmark's prompt words (imported: one list) and the words of its fixed prompts.
ENGLISH = (
    list(PROMPT_WORDS)
    + (  # noqa: SIM905 - a word list reads better as text
        "a an and or but if of to in on at by for with from as is are was were be been being have has had do does "
        "did not no yes it its this that these those there here what which who whom whose when where why how all "
        "any each every some many much more most few less least other another such own same so than too very can "
        "will just should would could may might must shall up down out over under again once about into through "
        "during before after above below between then now i you he she we they me him her us them my your his our "
        "their one two three four five six seven eight nine ten hundred thousand first second third last next "
        "new old good great high small large big long little young early late important public bad able "
        "colour colours color colors rainbow red orange yellow green blue indigo violet describe json population "
        "tags tag user assistant system hello say short sentence explain difference example speed scalar velocity "
        "vector lab machine machines model models serve serves server language class host hosts runs run unit "
        "answer answers chat completion completions quick brown fox jumps lazy dog object value items list "
        "true false null key keys array string integer"
    ).split()
)
_ENGLISH_SET = frozenset(ENGLISH)
_ONSETS: tuple[str, ...] = ("b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w")
_ONSETS += ("z", "br", "ch", "cr", "dr", "fl", "gr", "pl", "pr", "sh", "st", "th", "tr")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io", "ou")
_CODAS = ("", "n", "r", "s", "t", "l", "m", "nd", "st")


def _made_up_words() -> Iterator[str]:
    """Pronounceable words, two syllables then three, each once, in a fixed order."""
    syllables = [o + v for o, v in itertools.product(_ONSETS, _VOWELS)]
    for coda in _CODAS:
        for a, b in itertools.product(syllables, syllables):
            yield a + b + coda
    for a, b, c in itertools.product(syllables, syllables, syllables):
        yield a + b + c


def vocabulary(size: int = QWEN3_VOCAB) -> list[str]:
    """Exactly ``size`` distinct pieces: ids 0-2 the ChatML specials, 3 the unknown piece, 4-259 the byte pieces
    (``<0x00>``..``<0xFF>``, so any text encodes), then characters, English words (with and without the
    word-start mark), then made-up words (with the mark: each decodes to a space and a word)."""
    base = [*SPECIALS, UNK, *BYTES]
    chars = [c for c in string.printable if c not in " \x0b\x0c\r"]
    base += [MARK, *chars] + [MARK + w for w in ENGLISH] + ENGLISH
    base = list(dict.fromkeys(base))
    if size < len(base):
        raise ValueError(f"a vocabulary needs at least {len(base)} pieces, {size} were asked for")
    seen = set(base)
    vocab = list(base)
    for word in _made_up_words():
        if len(vocab) >= size:
            break
        if MARK + word not in seen:
            seen.add(MARK + word)
            vocab.append(MARK + word)
    return vocab


def _score(piece: str) -> float:
    """Unigram log-probabilities: whole words beat pieces, bytes are the last resort."""
    if piece in SPECIALS or piece == UNK:
        return 0.0
    if piece in BYTES:
        return -20.0
    if len(piece) == 1:
        return -10.0
    return -6.0 if piece.lstrip(MARK) in _ENGLISH_SET else -8.0


def build_tokenizer(size: int = QWEN3_VOCAB) -> Tokenizer:
    """A SentencePiece-style Unigram tokenizer over ``vocabulary(size)``: text round-trips exactly (newlines
    and spaces included), which the Qwen3 response parser of ``transformers serve`` relies on."""
    pieces = [(piece, _score(piece)) for piece in vocabulary(size)]
    tok = Tokenizer(models.Unigram(pieces, unk_id=SPECIALS_COUNT, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=MARK, prepend_scheme="first", split=True)
    tok.decoder = decoders.Sequence(
        [decoders.Replace(MARK, " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tok.add_special_tokens(list(SPECIALS))
    return tok


def save_pretrained(directory: str, size: int = QWEN3_VOCAB) -> dict[str, int]:
    """Write the tokenizer as transformers loads it (tokenizer.json, tokenizer_config.json, chat template)."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(size),
        bos_token=SPECIALS[0],
        eos_token=SPECIALS[2],
        pad_token=SPECIALS[0],
        unk_token=UNK,
    )
    fast.chat_template = CHATML
    fast.save_pretrained(directory)
    return {
        "vocab_size": len(fast),
        "bos_token_id": int(fast.bos_token_id),
        "eos_token_id": int(fast.eos_token_id),
        "pad_token_id": int(fast.pad_token_id),
    }


if __name__ == "__main__":
    import sys

    t = build_tokenizer(int(sys.argv[1]) if len(sys.argv) > 1 else QWEN3_VOCAB)
    print(t.get_vocab_size(), t.decode(list(range(100, 130))))
