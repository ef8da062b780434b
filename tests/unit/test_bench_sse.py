"""The SSE parser and chunked decoding, including boundaries that split events, lines and CRLFs."""

from __future__ import annotations

import pytest
from ansible_collections.sparkfleet.fleet.plugins.module_utils.sparkfleet.bench.http_client import SSEParser

STREAM = (
    b'data: {"choices":[{"delta":{"content":"He"}}]}\n\n'
    b": keep-alive comment\n\n"
    b'data: {"choices":[{"delta":{"content":"llo"}}]}\n\n'
    b"event: message\nid: 7\ndata: first line\ndata: second line\n\n"
    b'data: {"usage":{"completion_tokens":2}}\n\n'
    b"data: [DONE]\n\n"
)
EXPECTED = [
    b'{"choices":[{"delta":{"content":"He"}}]}',
    b'{"choices":[{"delta":{"content":"llo"}}]}',
    b"first line\nsecond line",
    b'{"usage":{"completion_tokens":2}}',
    b"[DONE]",
]


def _feed_all(parser: SSEParser, pieces: list[bytes]) -> list[bytes]:
    out: list[bytes] = []
    for piece in pieces:
        out.extend(parser.feed(piece))
    out.extend(parser.flush())
    return out


def test_whole_stream_in_one_feed() -> None:
    parser = SSEParser()
    assert _feed_all(parser, [STREAM]) == EXPECTED
    assert parser.ignored == 0


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 64])
def test_any_chunk_boundary_gives_the_same_events(size: int) -> None:
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert _feed_all(SSEParser(), pieces) == EXPECTED


@pytest.mark.parametrize("split", range(1, 40))
def test_crlf_stream_split_anywhere(split: int) -> None:
    crlf = STREAM.replace(b"\n", b"\r\n")
    assert _feed_all(SSEParser(), [crlf[:split], crlf[split:]]) == EXPECTED


def test_cr_only_line_endings() -> None:
    cr = STREAM.replace(b"\n", b"\r")
    pieces = [cr[i : i + 3] for i in range(0, len(cr), 3)]
    assert _feed_all(SSEParser(), pieces) == EXPECTED


def test_data_without_space_and_empty_data() -> None:
    assert SSEParser().feed(b"data:x\n\ndata\n\n") == [b"x", b""]


def test_incomplete_event_waits_for_the_blank_line() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: part") == []
    assert parser.feed(b"ial\n") == []
    assert parser.feed(b"\n") == [b"partial"]


def test_flush_returns_an_unterminated_last_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n\ndata: two") == [b"one"]
    assert parser.flush() == [b"two"]
    assert parser.flush() == []


def test_unknown_fields_are_ignored_and_counted() -> None:
    # The SSE specification: a field other than data/event/id/retry is ignored, not an error.
    parser = SSEParser()
    events = parser.feed(b'data: ok\n\nthis is not sse\n\n{"json": 1}\n\nfoo: bar\ndata: two\n\n')
    assert events == [b"ok", b"two"]
    assert parser.ignored == 3
    assert parser.last_ignored == b"foo: bar"


@pytest.mark.parametrize("split", [0, 1, 2, 3, 4, 9])
def test_a_utf8_bom_at_the_start_is_dropped_even_when_split(split: int) -> None:
    raw = b"\xef\xbb\xbfdata: one\n\ndata: two\n\n"
    parser = SSEParser()
    assert parser.feed(raw[:split]) + parser.feed(raw[split:]) == [b"one", b"two"]
    assert parser.ignored == 0


def test_only_the_first_bom_is_dropped() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef\xbb\xbfdata: a\n\n") == [b"a"]
    assert parser.feed(b"\xef\xbb\xbfdata: b\n\n") == []  # a BOM later is part of a field name: ignored
    assert parser.ignored == 1
