"""The SSE parser and chunked decoding, including boundaries that split events, lines and CRLFs."""

from __future__ import annotations

import pytest
from ansible.module_utils.sparkfleet.bench.http_client import SSEParser

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
    assert parser.malformed == 0


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


def test_malformed_lines_are_counted() -> None:
    parser = SSEParser()
    events = parser.feed(b'data: ok\n\nthis is not sse\n\n{"json": 1}\n\n')
    assert events == [b"ok"]
    assert parser.malformed == 2
    assert parser.last_malformed == b'{"json": 1}'
