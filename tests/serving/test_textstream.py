"""Incremental decoding and stop-string filtering (pure text logic, real tiny tokenizer)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from serving.textstream import IncrementalDecoder, StopFilter, trim_at_stop

# Multi-byte characters split across byte-level BPE tokens are the hard case.
TEXT = st.text(alphabet=st.sampled_from(list("ab 12+=.\n") + ["é", "ß", "中", "文", "😀", "→"]), max_size=40)


@settings(max_examples=60, deadline=None)
@given(text=TEXT, cuts=st.lists(st.integers(1, 4), max_size=40))
def test_incremental_decode_equals_full_decode(tiny_tokenizer, text, cuts):
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    dec, out, i = IncrementalDecoder(tiny_tokenizer), [], 0
    for size in cuts + [len(ids)]:
        piece = dec.push(ids[i : i + size])
        assert "\ufffd" not in piece  # never show half a character
        out.append(piece)
        i += size
    out.append(dec.flush())
    assert "".join(out) == tiny_tokenizer.decode(ids) == text


def test_incomplete_character_is_released_at_flush(tiny_tokenizer):
    ids = tiny_tokenizer.encode("😀", add_special_tokens=False)
    assert len(ids) > 1  # the emoji's 4 bytes are several tokens in the tiny vocabulary
    dec = IncrementalDecoder(tiny_tokenizer)
    assert dec.push(ids[:1]) == ""
    assert dec.flush() != ""


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet="abc", max_size=30), cuts=st.lists(st.integers(1, 5), max_size=10),
       stop=st.text(alphabet="abc", min_size=1, max_size=3))
def test_stop_filter_matches_trimming_the_whole_text(text, cuts, stop):
    """However the text is cut into deltas, the stream shows exactly the text before the stop."""
    stops = [stop]
    filt, out, i = StopFilter(stops), [], 0
    for size in cuts + [len(text)]:
        out.append(filt.push(text[i : i + size]))
        i += size
    out.append(filt.flush())
    expected, found = trim_at_stop(text, stops)
    assert "".join(out) == expected and filt.stopped == found


def test_stop_filter_without_stops_passes_everything():
    filt = StopFilter([])
    assert filt.push("abc") == "abc" and filt.flush() == ""
