"""The forced word aligner (maskgct.align): the Viterbi path, boundaries of spliced words whose true times
are known, the match score, boundary snapping and errors. bench/align.py has the full measurement."""

import librosa
import numpy as np
import pytest

from maskgct.align import MATCH_THRESHOLD, AlignmentError, align_words, snap_to_low_energy
from maskgct.align.phones import align_phones, phone_centres
from maskgct.align.symbols import phone_symbol_sets
from maskgct.align.viterbi import NoPathError, forced_align
from maskgct.data.synth import ESPEAK_VOICES, EspeakSynth
from maskgct.text import ids_to_symbols, text_to_ids

SR = 16000
TEXT = "the old man gave his daughter a small brown horse"


def _log_probs(frames: list[int], vocab: int = 4) -> np.ndarray:
    """``(T, vocab)`` log-probabilities whose best symbol at frame t is ``frames[t]``."""
    probs = np.full((len(frames), vocab), 0.02)
    probs[np.arange(len(frames)), frames] = 1.0
    return np.log(probs / probs.sum(axis=1, keepdims=True))


def test_viterbi_follows_the_frames_and_needs_blanks_between_repeats():
    # symbols: 0 blank, 1, 2, 3; frames say: blank, 1 1, blank, 2, blank blank, 2, 3
    path = forced_align(_log_probs([0, 1, 1, 0, 2, 0, 0, 2, 3]), [(1,), (2,), (2,), (3,)], [(0,)] * 5)
    assert [path.token_frames(k).tolist() for k in range(4)] == [[1, 2], [4], [7], [8]]
    assert np.allclose(path.frame_logp, path.best_logp)
    # "2 2" in three frames needs a blank between them; two frames cannot hold it.
    forced_align(_log_probs([2, 0, 2]), [(2,), (2,)], [(0,)] * 3)
    with pytest.raises(NoPathError):
        forced_align(_log_probs([2, 2]), [(2,), (2,)], [(0,)] * 3)
    # A wrong token is still placed (forced), at a cost the score sees.
    wrong = forced_align(_log_probs([0, 1, 0, 3, 0]), [(1,), (2,)], [(0,)] * 3)
    assert (wrong.best_logp - wrong.frame_logp).sum() > 3.0


@pytest.fixture(scope="module")
def spliced():
    """The words of TEXT said one by one by two espeak voices, trimmed and joined with known gaps (0 ms:
    the words touch) → ``[(wav, [(start_s, end_s)])]``."""
    synth, rng, out = EspeakSynth(), np.random.default_rng(0), []
    for voice in (ESPEAK_VOICES[0], ESPEAK_VOICES[9]):
        pieces, spans, t = [np.zeros(SR // 10, np.float32)], [], 0.1
        for word in TEXT.split():
            wav, rate = synth(voice, word)
            wav, _ = librosa.effects.trim(librosa.resample(wav, orig_sr=rate, target_sr=SR), top_db=40)
            gap = np.zeros(int(rng.choice([0, 0.03, 0.15]) * SR), np.float32)
            spans.append((t, t + len(wav) / SR))
            pieces += [wav, gap]
            t += (len(wav) + len(gap)) / SR
        pieces.append(np.zeros(SR // 5, np.float32))
        noise = 3e-4 * rng.standard_normal(sum(map(len, pieces)))
        out.append(((np.concatenate(pieces) + noise).astype(np.float32), spans))
    return out


def test_spliced_word_boundaries(spliced):
    errors = []
    for wav, spans in spliced:
        alignment = align_words(wav, SR, TEXT)
        assert [w.word for w in alignment.words] == TEXT.split()
        for word, (start, end) in zip(alignment.words, spans, strict=True):
            errors += [abs(word.start_s - start), abs(word.end_s - end)]
        assert alignment.score > MATCH_THRESHOLD
    errors = np.array(errors) * 1000
    assert np.median(errors) < 10 and np.percentile(errors, 90) < 30 and errors.max() < 60, errors


def test_the_sample_rate_and_channels_do_not_matter(spliced):
    wav, spans = spliced[0]
    at_22k = librosa.resample(wav, orig_sr=SR, target_sr=22050)
    stereo = np.stack([at_22k, at_22k])
    a, b = align_words(wav, SR, TEXT), align_words(stereo, 22050, TEXT)
    pairs = zip(a.words, b.words, strict=True)
    assert max(abs(x.start_s - y.start_s) + abs(x.end_s - y.end_s) for x, y in pairs) < 0.05


def test_words_keep_their_place_in_the_transcript(spliced):
    wav, _ = spliced[0]
    plain = align_words(wav, SR, TEXT)
    dashed = align_words(wav, SR, TEXT.replace("man ", "man - "))
    assert [w.index for w in plain.words] == list(range(10))
    assert [w.index for w in dashed.words] == [0, 1, 2, *range(4, 11)]
    assert [w.word for w in dashed.words] == TEXT.split()


def test_a_transcript_that_does_not_match_scores_low(spliced):
    wav, _ = spliced[0]
    assert align_words(wav, SR, TEXT).score > MATCH_THRESHOLD
    other = align_words(wav, SR, "please call stella and ask her to bring these things with her")
    assert other.score < MATCH_THRESHOLD
    # One word replaced: the whole-transcript score hardly moves, the word's own score drops.
    replaced = align_words(wav, SR, TEXT.replace("daughter", "elephant"))
    assert replaced.words[5].word == "elephant"
    assert replaced.words[5].score < MATCH_THRESHOLD < align_words(wav, SR, TEXT).words[5].score


def test_snap_to_low_energy():
    t = np.arange(SR) / SR
    wav = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    wav[int(0.50 * SR) : int(0.53 * SR)] = 0.0  # a 30 ms silence at 0.50-0.53 s
    wav[int(0.70 * SR) : int(0.72 * SR)] *= 0.1  # a quieter stretch, 20 dB down, at 0.70-0.72 s
    assert snap_to_low_energy(wav, SR, 0.46, radius_ms=60) == pytest.approx(0.52, abs=0.011)
    assert snap_to_low_energy(wav, SR, 0.56, radius_ms=60) == pytest.approx(0.52, abs=0.011)
    assert snap_to_low_energy(wav, SR, 0.68, radius_ms=30) == pytest.approx(0.71, abs=0.011)
    # Out of reach: the silence is 90 ms away, the radius 40 ms, so the point stays in the tone's range.
    assert abs(snap_to_low_energy(wav, SR, 0.40, radius_ms=40) - 0.40) <= 0.04


def test_every_english_phone_has_symbols():
    from hama.asr import ASRModel

    from maskgct.text import texts_to_phones

    vocabulary = ASRModel().decoder_tokens
    sentences = ["The judge's church was near the thirty-two orange trees, wasn't it?", TEXT]
    for phones in texts_to_phones(sentences, "en"):
        units = phone_symbol_sets(phones, vocabulary)
        assert len(units) >= len([p for p in phones if p not in "_,.?"])
    assert phone_symbol_sets(["dʒ"], vocabulary) == [(vocabulary.index("d͡ʒ"),)]


def test_errors(spliced):
    wav, _ = spliced[0]
    with pytest.raises(AlignmentError, match="no words"):
        align_words(wav, SR, " ,. ")
    with pytest.raises(AlignmentError, match="supports en"):
        align_words(wav, SR, TEXT, language="fr")
    with pytest.raises(AlignmentError, match="too short"):
        align_words(wav[: SR // 10], SR, TEXT)


def test_phone_centres_follow_the_frames_and_put_silent_phones_between():
    # symbols: 0 blank, 1 word boundary, 2 h, 3 ɛ, 4 l, 5 i; the frames say: h h . ɛ . <wb> <wb> l . i i .
    vocabulary = ["<b>", "<wb>", "h", "ɛ", "l", "i"]
    log_probs = _log_probs([0, 2, 2, 0, 3, 0, 1, 1, 4, 0, 5, 5, 0], vocab=6)
    centres = phone_centres(log_probs, ["h", "ɛ", "_", "l", "i", "."], 0, (0, 1), vocabulary)
    assert centres.tolist() == [1.5, 4.0, 6.0, 8.0, 10.5, 11.25]  # the last: midway to the end
    with pytest.raises(AlignmentError, match="no phone has a sound"):
        phone_centres(log_probs, ["_", "."], 0, (0, 1), vocabulary)
    with pytest.raises(AlignmentError, match="too short"):
        phone_centres(log_probs[:3], ["h", "ɛ", "l", "i"], 0, (0, 1), vocabulary)


def test_each_phone_is_placed_inside_its_word(spliced):
    """Every phone of TEXT's G2P lands within its word's known span (± 40 ms), in order."""
    phones = ids_to_symbols(text_to_ids(TEXT))
    word_of = np.cumsum([p == "_" for p in phones])  # "_" separates words (it counts with the next one)
    for wav, spans in spliced:
        frames = align_phones(wav, SR, phones)
        assert frames.shape == (len(phones),) and (np.diff(frames) >= 0).all()
        for phone, frame, word in zip(phones, frames, word_of, strict=True):
            if phone == "_":
                continue
            start, end = spans[word]
            assert start - 0.04 <= frame * 0.02 <= end + 0.04, (phone, word, frame * 0.02, spans[word])
