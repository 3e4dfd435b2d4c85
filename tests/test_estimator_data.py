"""Reading datasets: formats, validation errors, splits and batch schedule."""
import json

import numpy as np
import pytest

from estimators.data import (DOCUMENT_SEPARATOR, DataFormatError, batch_schedule, check_format,
                             load, split, validate_file)


def test_bytes_are_tokens_zero_to_255(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(range(256)))
    data = load(path)
    assert data.vocab_size == 256 and data.bytes == 256
    assert list(data.tokens[:3]) == [0, 1, 2]
    assert len(data.sha256) == 64


def test_jsonl_field_documents_are_joined_with_a_separator(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "n": i}) for i, t in enumerate(["ab", "cd"])))
    data = load(path, "jsonl:text")
    assert data.modelled_bytes() == b"ab" + DOCUMENT_SEPARATOR + b"cd"
    assert data.bytes == path.stat().st_size


def test_csv_column_is_read(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,body\n1,hello\n2,world\n")
    assert load(path, "csv:body").modelled_bytes() == b"hello" + DOCUMENT_SEPARATOR + b"world"


def test_npy_tokens_infer_or_check_the_vocabulary(tmp_path):
    path = tmp_path / "t.npy"
    np.save(path, np.array([0, 5, 999, 3], dtype=np.int32))
    assert load(path, "tokens").vocab_size == 1000
    assert load(path, "tokens", vocab_size=2048).vocab_size == 2048
    with pytest.raises(DataFormatError, match="outside the vocabulary"):
        load(path, "tokens", vocab_size=10)


@pytest.mark.parametrize("spec,content,message", [
    ("text", b"ok \xff\xfe", "not valid UTF-8 text: bad byte at offset 3"),
    ("jsonl:text", b'{"text": "a"}\nnot json\n', "line 2 is not valid JSON"),
    ("jsonl:text", b'{"body": "a"}\n', "line 1 has no field 'text'"),
    ("csv:body", b"id,text\n1,a\n", "CSV has no column 'body'"),
    ("tokens", b"definitely not numpy", "not a .npy array: the file does not start with the "
                                        ".npy header; save the token ids with numpy.save"),
    ("tokens", b"\x93NUMPY\x01\x00garbled header", "not a .npy array"),
])
def test_content_that_does_not_match_its_format_is_rejected_with_a_reason(
        tmp_path, spec, content, message):
    path = tmp_path / "bad"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=message.replace(".", r"\.")):
        validate_file(path, spec)


@pytest.mark.parametrize("spec", ["parquet", "jsonl", "csv:", "bytes:x"])
def test_unknown_formats_say_what_is_accepted(spec):
    with pytest.raises(DataFormatError, match="use bytes, text, jsonl:FIELD, csv:COLUMN or tokens"):
        check_format(spec)


def test_split_holds_out_a_slice_never_trained_on_and_depends_on_the_seed():
    tokens = np.arange(10_000, dtype=np.int64) % 251
    a, b = split(tokens, 32, 0, 1024), split(tokens, 32, 1, 1024)
    assert not set(a.train) & set(a.heldout)
    assert len(a.train) + len(a.heldout) == (len(tokens) - 1) // 32
    assert a.heldout_tokens <= 1024
    assert list(a.train[:5]) != list(b.train[:5])
    assert list(split(tokens, 32, 0, 1024).train) == list(a.train)


def test_the_held_out_slice_and_its_samples_are_spread_over_the_whole_stream():
    tokens = np.arange(100_001, dtype=np.int64) % 251
    s = split(tokens, 100, 3, 4000)  # 1,000 sequences, 40 held out: one in each 25
    assert len(s.heldout) == 40
    assert list(s.heldout // 100 // 25) == list(range(40))
    sample = s.heldout_sample(8)  # every fifth, in stream order
    assert list(sample) == list(s.heldout[::5])
    assert list(s.heldout_sample(99)) == list(s.heldout)


def test_each_token_is_a_target_once_across_sequences():
    tokens = np.arange(1000, dtype=np.int64)
    s = split(tokens, 10, 0, 50)
    targets = np.concatenate([s.sequences(s.train)[:, 1:].ravel(),
                              s.sequences(s.heldout)[:, 1:].ravel()])
    assert len(targets) == len(set(targets.tolist()))


def test_batches_ramp_up_from_one_sequence_and_cover_the_data_once():
    sizes = batch_schedule(100, 16)
    assert sizes[:4] == [1, 1, 2, 2] and max(sizes) == 16 and sum(sizes) == 100


def test_tiny_data_is_refused_with_the_size_needed():
    with pytest.raises(DataFormatError, match="at least 513 are needed"):
        split(np.zeros(100, dtype=np.int64), 128, 0, 1024)
