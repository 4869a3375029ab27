"""``python -m maskgct.data import``: manifests (TSV, CSV, JSONL) → validated data dirs, bad rows listed."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from maskgct.data.__main__ import main
from maskgct.data.datadir import read_datadir, validate_datadir

RATE = 16000


def _tone(path, seconds=1.0, amplitude=0.3, fmt=None):
    t = np.arange(int(seconds * RATE)) / RATE
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, amplitude * np.sin(2 * np.pi * 220 * t), RATE, format=fmt)
    return path


@pytest.fixture
def corpus(tmp_path):
    """A manifest folder with good clips and one clip of each kind of bad audio."""
    root = tmp_path / "corpus"
    for name in ("a", "b", "c"):
        _tone(root / "wavs" / f"{name}.wav")
    _tone(root / "wavs" / "short.wav", seconds=0.1)
    _tone(root / "wavs" / "long.wav", seconds=3.0)
    _tone(root / "wavs" / "silent.wav", amplitude=0.0)
    (root / "wavs" / "garbage.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)
    # A FLAC whose header is intact but whose frames stop a third of the way: only decoding finds it.
    flac = _tone(root / "wavs" / "whole.flac").read_bytes()
    (root / "wavs" / "cut.flac").write_bytes(flac[: len(flac) // 3])
    return root


def _run(capsys, *argv):
    code = main(["import", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def _rejected(out_dir):
    lines = (out_dir / "rejected.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "line\tpath\treason"
    return [(int(line.split("\t")[0]), line.split("\t")[2]) for line in lines[1:]]


def test_good_tsv_rows_make_a_valid_data_dir(corpus, tmp_path, capsys):
    manifest = corpus / "list.tsv"
    manifest.write_text(
        "wavs/a.wav\t  Hello,   world. \tjoe\nwavs/b.wav\tSecond line.\tjoe\nwavs/c.wav\tThird.\tann\n"
    )
    out_dir = tmp_path / "data" / "train"
    code, out, err = _run(capsys, manifest, out_dir, "--max-seconds", "2")
    assert (code, err) == (0, "")
    assert "3 utterances, 2 speakers: validated" in out
    data, problems, warnings = validate_datadir(out_dir)
    assert (problems, warnings) == ([], [])
    assert data.utt2spk == {"ann-c": "ann", "joe-a": "joe", "joe-b": "joe"}
    assert data.text["joe-a"] == "Hello, world."
    assert data.wav_scp["ann-c"] == str(corpus / "wavs" / "c.wav")  # relative to the manifest, made absolute
    assert _rejected(out_dir) == []
    assert main(["validate", str(out_dir)]) == 0
    assert not [p for p in out_dir.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_every_kind_of_bad_row_is_listed_with_its_line(corpus, tmp_path, capsys):
    manifest = corpus / "list.tsv"
    rows = [
        "wavs/a.wav\tGood one.\tjoe",  # 1
        "wavs/nope.wav\tNo such file.\tjoe",  # 2
        "wavs/garbage.wav\tNot audio.\tjoe",  # 3
        "wavs/cut.flac\tTruncated.\tjoe",  # 4
        "wavs/b.wav\t   \tjoe",  # 5
        "wavs/a.wav\tSame id again.\tjoe",  # 6
        "just one field",  # 7
        "wavs/short.wav\tToo short.\tjoe",  # 8
        "wavs/long.wav\tToo long.\tjoe",  # 9
        "wavs/silent.wav\tSilence.\tjoe",  # 10
        "",  # 11: blank lines are not rows
        "wavs/c.wav\tGood two.\tjoe\textra\tcolumns",  # 12
        "wavs/b.wav\tGood three.",  # 13: no speaker column, the default speaker
    ]
    manifest.write_text("\n".join(rows) + "\n")
    out_dir = tmp_path / "out"
    code, out, err = _run(capsys, manifest, out_dir, "--max-seconds", "2")
    assert code == 0
    assert err.strip() == f"{manifest}: 10 of 12 rows rejected, see {out_dir / 'rejected.tsv'}"
    reasons = dict(_rejected(out_dir))
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 12]
    assert reasons[2].startswith("missing audio file") and reasons[2].endswith("nope.wav")
    assert reasons[3].startswith("unreadable or corrupt audio")
    assert reasons[4].startswith("unreadable or corrupt audio") and "cut.flac" in reasons[4]
    assert reasons[5] == "empty text"
    assert reasons[6] == "duplicate id joe-a (first on line 1)"
    assert reasons[7].startswith("bad columns: 1 fields")
    assert reasons[8] == "too short: 0.10s < 0.3s"
    assert reasons[9] == "too long: 3.00s > 2.0s"
    assert reasons[10].startswith("silent audio")
    assert reasons[12].startswith("bad columns: 5 fields")
    assert read_datadir(out_dir).utt2spk == {"joe-a": "joe", "speaker-b": "speaker"}


def test_all_rows_bad_is_an_error_and_writes_nothing(corpus, tmp_path, capsys):
    manifest = corpus / "list.tsv"
    manifest.write_text("wavs/nope.wav\tA.\nwavs/silent.wav\tB.\n")
    code, out, err = _run(capsys, manifest, tmp_path / "out")
    assert (code, out) == (2, "")
    assert err.splitlines() == [f"error: {manifest}: no usable rows, 2 rejected (line 1: missing audio file "
                                f"{corpus / 'wavs' / 'nope.wav'})"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus"]


def test_unreadable_sources_and_existing_output(corpus, tmp_path, capsys):
    code, _, err = _run(capsys, tmp_path / "missing.tsv", tmp_path / "out")
    assert (code, err) == (2, f"error: manifest not found: {tmp_path / 'missing.tsv'}\n")
    bad_header = corpus / "list.csv"
    bad_header.write_text("file,words\nwavs/a.wav,Hello\n")
    code, _, err = _run(capsys, bad_header, tmp_path / "out")
    assert (
        code == 2 and err.startswith("error: the header 'file,words' needs a path") and err.count("\n") == 1
    )
    odd = corpus / "list.dat"
    odd.write_text("wavs/a.wav Hello\n")
    code, _, err = _run(capsys, odd, tmp_path / "out")
    assert (code, err) == (2, f"error: {odd}: cannot tell the format; pass --format tsv, csv or jsonl\n")

    manifest = corpus / "list.tsv"
    manifest.write_text("wavs/a.wav\tFirst.\n")
    out_dir = tmp_path / "out"
    out_dir.mkdir()  # an empty folder is fine to fill
    assert _run(capsys, manifest, out_dir)[0] == 0
    manifest.write_text("wavs/b.wav\tSecond.\n")
    code, _, err = _run(capsys, manifest, out_dir)
    assert (code, err) == (2, f"error: {out_dir} exists and is not empty; pass --overwrite to replace it\n")
    assert read_datadir(out_dir).text == {"speaker-a": "First."}
    assert _run(capsys, manifest, out_dir, "--overwrite")[0] == 0
    assert read_datadir(out_dir).text == {"speaker-b": "Second."}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "out"]


def test_encodings_bom_crlf_and_a_line_that_is_not_utf8(corpus, tmp_path, capsys):
    manifest = corpus / "list.tsv"
    body = "wavs/a.wav\tCafé déjà vu.\tjoe\r\n".encode() + "wavs/b.wav\tNaïve\tjoe\r\n".encode("latin-1")
    manifest.write_bytes(b"\xef\xbb\xbf" + body + "wavs/c.wav\t你好，世界。\tjoe\r\n".encode())
    out_dir = tmp_path / "out"
    assert _run(capsys, manifest, out_dir)[0] == 0
    data = read_datadir(out_dir)
    assert data.text == {"joe-a": "Café déjà vu.", "joe-c": "你好，世界。"}
    assert data.wav_scp["joe-a"] == str(corpus / "wavs" / "a.wav")  # the BOM is not part of the path
    assert _rejected(out_dir) == [(2, "not UTF-8 text (byte 0xef); save as UTF-8")]


def test_relative_paths_against_the_manifest_or_audio_root(corpus, tmp_path, capsys, monkeypatch):
    lists = tmp_path / "lists"
    lists.mkdir()
    _tone(lists / "wavs" / "c.wav")
    monkeypatch.chdir(corpus)  # the working directory does not count, though wavs/a.wav is there
    manifest = lists / "list.tsv"
    manifest.write_text(
        f"wavs/a.wav\tRelative.\n{corpus / 'wavs' / 'b.wav'}\tAbsolute.\nwavs/c.wav\tBeside.\n"
    )
    assert _run(capsys, manifest, tmp_path / "one")[0] == 0
    assert read_datadir(tmp_path / "one").wav_scp == {
        "speaker-b": str(corpus / "wavs" / "b.wav"),
        "speaker-c": str(lists / "wavs" / "c.wav"),
    }
    assert _rejected(tmp_path / "one") == [(1, f"missing audio file {lists / 'wavs' / 'a.wav'}")]
    assert _run(capsys, manifest, tmp_path / "two", "--audio-root", corpus)[0] == 0
    assert read_datadir(tmp_path / "two").wav_scp == {
        "speaker-a": str(corpus / "wavs" / "a.wav"),
        "speaker-b": str(corpus / "wavs" / "b.wav"),
        "speaker-c": str(corpus / "wavs" / "c.wav"),
    }


def test_csv_with_header_quotes_and_speaker_column(corpus, tmp_path, capsys):
    manifest = corpus / "meta.csv"
    manifest.write_text(
        'Path,Text,Voice,id\nwavs/a.wav,"Hello, world.",joe,first\n\n'
        'wavs/b.wav,"Two\nlines",ann,\nwavs/c.wav,missing a column\n'
    )
    out_dir = tmp_path / "out"
    assert _run(capsys, manifest, out_dir, "--speaker-column", "voice")[0] == 0
    data = read_datadir(out_dir)
    assert data.text == {"ann-b": "Two lines", "joe-first": "Hello, world."}
    assert _rejected(out_dir) == [(6, "bad columns: 2 fields, 4 expected")]


def test_tsv_with_a_header_reads_columns_by_name(corpus, tmp_path, capsys):
    manifest = corpus / "list.txt"  # not a known suffix: the tab on the first line decides
    manifest.write_text("Speaker\tid\tAudio\ttext\njoe\t1\twavs/a.wav\tOne.\nann\t2\twavs/b.wav\n")
    assert _run(capsys, manifest, tmp_path / "out")[0] == 0
    assert read_datadir(tmp_path / "out").wav_scp == {"joe-1": str(corpus / "wavs" / "a.wav")}
    assert _rejected(tmp_path / "out") == [(3, "bad columns: 3 fields, 4 expected")]


def test_jsonl_rows(corpus, tmp_path, capsys):
    manifest = corpus / "cuts.jsonl"
    rows = [
        json.dumps({"audio": "wavs/a.wav", "text": "One.", "speaker": "joe"}),
        json.dumps({"path": "wavs/b.wav", "text": "Two.", "speaker": "ann", "duration": 1.0}),
        "{not json",
        json.dumps(["wavs/c.wav", "Three."]),
        json.dumps({"audio": "wavs/c.wav", "text": None}),
    ]
    manifest.write_text("\n".join(rows) + "\n")
    out_dir = tmp_path / "out"
    assert _run(capsys, manifest, out_dir)[0] == 0
    assert read_datadir(out_dir).utt2spk == {"ann-b": "ann", "joe-a": "joe"}
    reasons = dict(_rejected(out_dir))
    assert reasons[3].startswith("bad JSON")
    assert reasons[4] == reasons[5] == "bad columns: needs an object with audio (or path) and text"


def test_language_check_rejects_unpronounceable_text(corpus, tmp_path, capsys):
    manifest = corpus / "list.tsv"
    manifest.write_text("wavs/a.wav\tHello there.\nwavs/b.wav\t?!\n")
    out_dir = tmp_path / "out"
    assert _run(capsys, manifest, out_dir, "--language", "en")[0] == 0
    assert _rejected(out_dir) == [
        (2, "text has no phones in en: nothing pronounceable in '?!' (language 'en')")
    ]


def test_command_line_errors_are_one_line(corpus, tmp_path):
    manifest = corpus / "list.tsv"
    manifest.write_text("wavs/nope.wav\tA.\n")
    result = subprocess.run(
        [sys.executable, "-m", "maskgct.data", "import", str(manifest), str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
