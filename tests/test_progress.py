"""Progress lines of the long jobs: ``python -m maskgct.codecs.semantic stats`` and the w2v-BERT stand-in's
CTC training print a line on stderr every N utterances or steps."""

import io
import re

import pytest

from maskgct.codecs.semantic import main as semantic_main
from maskgct.progress import ProgressLines


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A data dir of 5 espeak utterances with transcripts."""
    from maskgct.data.synth import ESPEAK_VOICES, build_corpus

    root = tmp_path_factory.mktemp("corpus")
    build_corpus(root, ESPEAK_VOICES[:1], utts_per_speaker=5, dev_per_speaker=0, heldout=())
    return root / "train"


def test_lines_come_every_n_items_and_once_at_the_end():
    stream = io.StringIO()
    progress = ProgressLines("job", 10, "items", 4, stream)
    for done in (1, 3, 5, 6, 9, 10, 10):  # jumps over 4 and 8: one line each time a multiple is passed
        progress.update(done, f" (at {done})")
    lines = stream.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == ["job: 5/10 items (at 5)", "job: 9/10 items (at 9)",
                                                      "job: 10/10 items (at 10)"]  # fmt: skip
    assert re.fullmatch(r"job: 5/10 items \(at 5\), \d+ s, ~\d+ s left", lines[0])
    assert re.fullmatch(r"job: 10/10 items \(at 10\), \d+ s", lines[-1])  # no time left at the end
    silent = io.StringIO()
    quiet = ProgressLines("job", 10, "items", 0, silent)
    for done in range(11):
        quiet.update(done)
    assert silent.getvalue() == ""
    with pytest.raises(ValueError, match="must be >= 0"):
        ProgressLines("job", 10, "items", -1)


def test_stats_command_prints_progress(corpus, fixtures, tmp_path, capsys):
    args = ["stats", "--data-dir", str(corpus), "--w2v-bert", str(fixtures / "w2v_bert_tiny"), "--layer", "3",
            "--out", str(tmp_path / "stats.safetensors"), "--batch-size", "2",
            "--progress-every", "2"]  # fmt: skip
    assert semantic_main(args) == 0
    err = capsys.readouterr().err
    counts = re.findall(r"^feature statistics: (\d)/5 utterances \(0 skipped, \d+ frames\), \d+ s", err, re.M)
    assert counts == ["2", "4", "5"], err
    assert semantic_main([*args[:-1], "0"]) == 0
    assert "feature statistics" not in capsys.readouterr().err


def test_ctc_training_prints_steps_and_loss(corpus, tmp_path, capsys, one_thread):
    from maskgct.data.recipe import init_w2v_bert
    from maskgct.train.w2v_bert_ctc import train_w2v_bert_ctc

    folder = init_w2v_bert(tmp_path / "w2v_bert")
    train_w2v_bert_ctc(folder, corpus, layer=2, steps=5, batch_size=2, progress_every=2)
    err = capsys.readouterr().err
    assert re.findall(r"^w2v-BERT CTC features: (\d)/5 utterances, \d+ s", err, re.M) == ["4", "5"], err
    steps = re.findall(r"^w2v-BERT CTC training: (\d)/5 steps, loss (\d+\.\d{3}), \d+ s", err, re.M)
    assert [s for s, _ in steps] == ["2", "4", "5"] and all(float(loss) > 0 for _, loss in steps), err
