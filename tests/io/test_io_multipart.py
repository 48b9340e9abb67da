"""Multipart answers read as they arrive: the same parts whatever the pieces' sizes."""

from __future__ import annotations

import pytest

from workbench.io.dicomweb import DicomWebError, multipart_parts, split_parts
from workbench.io.webtransport import Answer

BOUNDARY = "b0undary"
KIND = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'


def _body(parts: list[bytes]) -> bytes:
    body = b"preamble\r\n"
    for number, content in enumerate(parts):
        body += f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\nX-N: {number}\r\n\r\n".encode()
        body += content + b"\r\n"
    return body + f"--{BOUNDARY}--\r\n".encode()


def _answer(body: bytes) -> Answer:
    return Answer("http://host/series", 200, "OK", {"Content-Type": KIND}, body)


# Contents holding what a delimiter starts with, and one empty part.
CONTENTS = [bytes(range(256)) * 40, b"", b"\r\n--b0und\r\n--", b"x" * 3001]


@pytest.mark.parametrize("size", [1, 2, 7, 13, 1000, 1 << 20])
def test_pieces_of_any_size_give_the_parts_of_the_whole(size):
    body = _body(CONTENTS)
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    streamed = list(split_parts(pieces, _answer(b"")))
    assert streamed == multipart_parts(_answer(body))
    assert [content for _, content in streamed] == CONTENTS
    assert [headers["x-n"] for headers, _ in streamed] == ["0", "1", "2", "3"]


@pytest.mark.parametrize("size", [1, 100, 1 << 20])
def test_an_answer_cut_short_is_refused_after_its_whole_parts(size):
    body = _body(CONTENTS)[:-60]
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    received = []
    with pytest.raises(DicomWebError, match="truncated multipart answer: part 4"):
        for part in split_parts(pieces, _answer(b"")):
            received.append(part[1])
    assert received == CONTENTS[:3]
