"""``python -m maskgct.data <command>``: data dirs, corpora and token dumps.

Commands:
  validate DATA_DIR            check format, sorting, consistency and that every audio file opens
  fix DATA_DIR                 rewrite the files sorted, regenerate spk2utt
  import SRC OUT_DIR           a TSV/CSV/JSONL manifest (audio path, text, speaker) → a validated data dir
  synth OUT_DIR                synthesise the offline multi-speaker corpus (train/dev/test data dirs)
  libritts SRC OUT_DIR         LibriTTS subset folders → data dirs
  extract DATA_DIR DUMP_DIR    phone ids, semantic tokens and acoustic codes in shards (--nj jobs, resumable)
  align DUMP_DIR DATA_DIR      add each phone's frame (forced alignment) to a dump, for guided attention
  info DUMP_DIR                utterances, frames and rejected count of a dump dir
  init-w2v-bert OUT_DIR        a small w2v-BERT stand-in (offline runs): random, or CTC-trained on phones
  make-tokenizer OUT_DIR       w2v-BERT or whisper + statistics + trained semantic codec → a tokenizer folder
  assemble OUT_DIR             trained networks → one MaskGCT checkpoint folder
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from maskgct.cli import DEVICE_HELP, pick_device, report_error
from maskgct.data.datadir import DataDirError, read_datadir, validate_datadir, write_datadir
from maskgct.data.importer import FORMATS, ImportConfig


def _validate(args) -> int:
    data, problems, warnings = validate_datadir(args.data_dir, check_audio=not args.no_audio)
    for problem in problems:
        print(f"{args.data_dir}: {problem}", file=sys.stderr)
    for warning in warnings:
        print(f"{args.data_dir}: warning: {warning}", file=sys.stderr)
    speakers = len(data.spk2utt)
    status = "FAILED" if problems else "OK"
    counts = f"{len(data.utt2spk)} utterances, {speakers} speakers, {len(problems)} problems"
    counts += f", {len(warnings)} warnings" if warnings else ""
    print(f"{args.data_dir}: {counts}: {status}")
    return 1 if problems else 0


def _fix(args) -> int:
    write_datadir(args.data_dir, read_datadir_unsorted(Path(args.data_dir)))
    print(f"{args.data_dir}: rewritten sorted")
    return 0


def read_datadir_unsorted(directory: Path):
    """Read a data dir whose files may be unsorted (Kaldi's ``fix_data_dir.sh``, common case): each file is
    sorted (byte order) into a scratch copy and read from there, so a data dir that cannot be fixed (a
    duplicate id, a missing file) is left exactly as it was."""
    if not directory.is_dir():
        raise DataDirError(f"data dir not found: {directory}")
    with tempfile.TemporaryDirectory() as scratch:
        for name in ("wav.scp", "text", "utt2spk", "segments"):
            path = directory / name
            if path.is_file():
                lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
                sorted_lines = "".join(f"{line}\n" for line in sorted(lines, key=str.encode))
                (Path(scratch) / name).write_text(sorted_lines, encoding="utf-8")
        try:
            return read_datadir(scratch)
        except DataDirError as err:
            # Name the user's folder, not the scratch copy (line numbers count the sorted lines).
            raise DataDirError(str(err).replace(scratch, str(directory))) from None


def _import(args) -> int:
    from maskgct.data.importer import REJECTED_FILE, import_manifest, write_import

    config = ImportConfig(
        format=args.format,
        audio_root=args.audio_root,
        speaker_column=args.speaker_column,
        language=args.language,
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
    )
    data, rejected = import_manifest(args.src, config)
    if not data.utt2spk:
        first = f" (line {rejected[0].line}: {rejected[0].reason})" if rejected else ""
        raise ValueError(f"{args.src}: no usable rows, {len(rejected)} rejected{first}")
    write_import(args.out_dir, data, rejected, overwrite=args.overwrite)
    if rejected:
        where = Path(args.out_dir) / REJECTED_FILE
        print(
            f"{args.src}: {len(rejected)} of {len(rejected) + len(data.utt2spk)} rows rejected, see {where}",
            file=sys.stderr,
        )
    print(f"{args.out_dir}: {len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers: validated")
    return 0


def _synth(args) -> int:
    from maskgct.data import synth

    voices = synth.available_voices()
    if args.voices:
        wanted = list(dict.fromkeys(name for name in args.voices.split(",") if name))
        known = {v.speaker: v for v in voices}
        chosen = []
        for name in wanted:
            if name in known:
                chosen.append(known[name])
            elif name.startswith("kokoro_"):
                chosen.append(synth.kokoro_voice(name))  # any style blend, speed and pitch, by name
            else:
                raise ValueError(f"unknown or unavailable voice {name!r}")
        # The machine's voice order, then the extra Kokoro blends in the order given.
        order = {v.speaker: k for k, v in enumerate(voices)}
        voices = sorted(chosen, key=lambda v: order.get(v.speaker, len(order)))
    heldout = tuple(args.heldout.split(",")) if args.heldout else synth.DEFAULT_HELDOUT
    if args.score:
        sentences = synth.load_sentences(args.sentences)
        picked = [sentences[k * len(sentences) // args.score] for k in range(args.score)]
        rows = synth.score_voices(voices, picked, args.out_dir)
        for row in rows:
            print(
                f"{row['speaker']}: WER {row['wer']:.3f}, within {row['within']:.3f}, nearest "
                f"{row.get('nearest', '-')} {row.get('nearest_sim', float('nan')):.3f}, "
                f"speaker-ID {row['id_accuracy']:.2f}"
            )
        print(f"{Path(args.out_dir) / 'voices.tsv'}: {len(rows)} voices")
        return 0
    sets = synth.build_corpus(
        args.out_dir,
        voices,
        args.utts_per_speaker,
        args.dev_per_speaker,
        heldout,
        args.sentences,
        args.nj,
        heldout_utts=args.heldout_utts,
        distinct=args.distinct_sentences,
        verbose=True,
    )
    for name, data in sets.items():
        print(f"{Path(args.out_dir) / name}: {len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers")
    return 0


def _libritts(args) -> int:
    from maskgct.data.libritts import prepare_libritts

    data = prepare_libritts(
        args.src, args.out_dir, args.subsets.split(","), normalized=not args.original_text
    )
    print(f"{args.out_dir}: {len(data.utt2spk)} utterances, {len(data.spk2utt)} speakers")
    return 0


def _extract(args) -> int:
    from maskgct.data.extract import TokenExtractorConfig, extract

    if args.nj < 1:
        raise ValueError(f"--nj must be at least 1 (parallel jobs), not {args.nj}")
    if args.shard_mb < 1:
        raise ValueError(f"--shard-mb must be at least 1 (megabytes per shard file), not {args.shard_mb}")
    config = TokenExtractorConfig(
        fields=tuple(args.fields.split(",")),
        language=args.language,
        semantic_codec=args.semantic_codec,
        acoustic_codec=args.acoustic_codec,
        device=pick_device(args.device),
        min_seconds=args.min_seconds,
        max_seconds=args.max_seconds,
    )
    config.check_models()
    summary = extract(
        args.data_dir, args.dump_dir, factory_arg=config, nj=args.nj, shard_bytes=args.shard_mb << 20
    )
    print(
        f"{args.dump_dir}: {summary['written']} written, {summary['rejected']} rejected "
        f"(see rejected.txt), {summary['shards']} shards"
    )
    return 0


def _info(args) -> int:
    from maskgct.data.shards import read_index

    dump_dir = Path(args.dump_dir)
    rows = [row for _, shard_rows in read_index(dump_dir) for row in shard_rows]
    if not rows:
        raise ValueError(f"{dump_dir}: no shards")
    frames = sum(row["semantic"][1] for row in rows if "semantic" in row)
    rejected = dump_dir / "rejected.txt"
    info = {
        "utterances": len(rows),
        "speakers": len({row["spk"] for row in rows}),
        "semantic_frames": frames,
        "hours": round(frames / 50 / 3600, 3),
        "rejected": len(rejected.read_text().splitlines()) if rejected.is_file() else 0,
    }
    print(json.dumps(info, indent=2))
    return 0


def _align(args) -> int:
    from maskgct.data.align import align_dump

    counts = align_dump(args.dump_dir, args.data_dir)
    print(
        f"{args.dump_dir}: {counts['aligned']} utterances aligned, {counts['failed']} not "
        f"({counts['skipped_shards']} shards were already)"
    )
    return 0


def _init_w2v_bert(args) -> int:
    from maskgct.data.recipe import init_w2v_bert

    init_w2v_bert(args.out_dir, args.hidden_size, args.num_layers, args.seed)
    print(f"{args.out_dir}: random w2v-BERT, {args.num_layers} layers of {args.hidden_size}")
    if args.ctc_data is not None:
        from maskgct.train.w2v_bert_ctc import train_w2v_bert_ctc

        result = train_w2v_bert_ctc(
            args.out_dir, args.ctc_data, args.ctc_layer, args.ctc_steps, args.ctc_lr, seed=args.seed
        )
        print(
            f"{args.out_dir}: layers 1..{args.ctc_layer} trained {args.ctc_steps} steps with CTC on the "
            f"phones of {args.ctc_data}: loss {result['first_loss']:.2f} -> {result['last_loss']:.2f}, "
            f"phone error rate {result['phone_error_rate']:.3f}"
        )
    return 0


def _make_tokenizer(args) -> int:
    from maskgct.data.recipe import make_tokenizer

    make_tokenizer(args.w2v_bert, args.stats, args.codec, args.layer, args.out_dir, args.whisper)
    print(f"{args.out_dir}: semantic tokenizer")
    return 0


def _assemble(args) -> int:
    from maskgct.data.recipe import assemble

    networks = (args.acoustic_codec, args.t2s, args.s2a_1layer, args.s2a_full, args.duration)
    assemble(args.out_dir, args.tokenizer, *networks, half=args.half)
    print(f"{args.out_dir}: MaskGCT checkpoint")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m maskgct.data", description=__doc__.split("\n")[0])
    commands = top.add_subparsers(dest="command", required=True)

    p = commands.add_parser("validate", help="check a data dir")
    p.add_argument("data_dir")
    p.add_argument("--no-audio", action="store_true", help="skip opening the audio files")
    p.set_defaults(run=_validate)

    p = commands.add_parser("fix", help="sort a data dir's files and regenerate spk2utt")
    p.add_argument("data_dir")
    p.set_defaults(run=_fix)

    p = commands.add_parser("import", help="a TSV/CSV/JSONL manifest → a validated data dir")
    p.add_argument("src", help="path<TAB>text[<TAB>speaker] TSV, CSV with a header or JSONL")
    p.add_argument("out_dir")
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--audio-root", help="folder for relative audio paths (default: the manifest's folder)")
    p.add_argument(
        "--speaker-column",
        default="speaker",
        help="the speaker column's name (CSV, JSONL) or 1-based number (TSV, default 3); none: one speaker",
    )
    p.add_argument("--language", help="reject transcripts with nothing pronounceable in this language")
    p.add_argument("--min-seconds", type=float, default=ImportConfig.min_seconds)
    p.add_argument("--max-seconds", type=float, default=ImportConfig.max_seconds)
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT_DIR")
    p.set_defaults(run=_import)

    p = commands.add_parser("synth", help="build the synthetic multi-speaker corpus")
    p.add_argument("out_dir")
    p.add_argument("--utts-per-speaker", type=int, default=40, help="sentences each training voice reads")
    p.add_argument("--dev-per-speaker", type=int, default=2)
    p.add_argument(
        "--voices",
        default="",
        help="comma-separated speaker names (default: all available); Kokoro voices may be any "
        "kokoro_<style>[_<style>_<weight>][_s<speed>][_p<pitch>] (percentages), "
        "e.g. kokoro_alpha_kumo_30_s90_p112",
    )
    p.add_argument("--heldout", default="", help="comma-separated held-out speakers (zero-shot test set)")
    p.add_argument("--heldout-utts", type=int, default=None, help="sentences each held-out voice reads")
    p.add_argument(
        "--sentences",
        default=None,
        help="sentence list, one per line, or 'templates' (400, the default) or 'large' (8000)",
    )
    p.add_argument(
        "--distinct-sentences",
        action="store_true",
        help="deal the list out so that different voices read different sentences (wraps when too short)",
    )
    p.add_argument(
        "--score",
        type=int,
        default=0,
        metavar="N",
        help="instead of a corpus: every voice reads the same N sentences; write whisper WER and "
        "resemblyzer similarities per voice to OUT_DIR/voices.tsv",
    )
    p.add_argument("--nj", type=int, default=1)
    p.set_defaults(run=_synth)

    p = commands.add_parser("libritts", help="LibriTTS subsets → one data dir")
    p.add_argument("src", help="the LibriTTS folder holding train-clean-100/ etc.")
    p.add_argument("out_dir")
    p.add_argument("--subsets", default="train-clean-100")
    p.add_argument(
        "--original-text", action="store_true", help="use *.original.txt instead of *.normalized.txt"
    )
    p.set_defaults(run=_libritts)

    p = commands.add_parser("extract", help="extract token shards from a data dir")
    p.add_argument("data_dir")
    p.add_argument("dump_dir")
    p.add_argument("--fields", default="phone_ids,semantic,acoustic")
    p.add_argument("--semantic-codec", default=None, help="trained semantic codec dir")
    p.add_argument("--acoustic-codec", default=None, help="trained acoustic codec dir")
    p.add_argument("--language", default="en")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--min-seconds", type=float, default=0.3)
    p.add_argument("--max-seconds", type=float, default=30.0)
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--shard-mb", type=int, default=256)
    p.set_defaults(run=_extract)

    p = commands.add_parser("align", help="add each phone's frame to a dump (for guided attention)")
    p.add_argument("dump_dir")
    p.add_argument("data_dir", help="the data dir the dump was extracted from (for the audio)")
    p.set_defaults(run=_align)

    p = commands.add_parser("info", help="summarise a dump dir")
    p.add_argument("dump_dir")
    p.set_defaults(run=_info)

    p = commands.add_parser(
        "init-w2v-bert", help="write a small w2v-BERT stand-in (random, or CTC-trained on phones)"
    )
    p.add_argument("out_dir")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ctc-data", help="a data dir: train the stand-in to recognise its phones (CTC)")
    p.add_argument("--ctc-layer", type=int, default=3, help="the layer trained (and kept as the top)")
    p.add_argument("--ctc-steps", type=int, default=600)
    p.add_argument("--ctc-lr", type=float, default=5e-3)
    p.set_defaults(run=_init_w2v_bert)

    p = commands.add_parser("make-tokenizer", help="assemble a semantic tokenizer folder")
    p.add_argument("out_dir")
    frontend = p.add_mutually_exclusive_group(required=True)
    frontend.add_argument("--w2v-bert", help="w2v-BERT folder (or hub id when online)")
    frontend.add_argument("--whisper", help="whisper encoder: tiny.en or a CTranslate2 folder")
    p.add_argument("--stats", required=True)
    p.add_argument("--codec", required=True, help="folder with semantic_codec.json/.safetensors")
    p.add_argument(
        "--layer", type=int, default=None, help="hidden-state index (default: 17 w2v-BERT, last whisper)"
    )
    p.set_defaults(run=_make_tokenizer)

    p = commands.add_parser("assemble", help="collect trained networks into a MaskGCT checkpoint folder")
    p.add_argument("out_dir")
    for name in ("tokenizer", "acoustic-codec", "t2s", "s2a-1layer", "s2a-full"):
        # --acoustic-codec: an acoustic_encoder/_decoder folder or a mel_codec folder, whichever was trained.
        p.add_argument(f"--{name}", required=True)
    p.add_argument("--duration", help="folder with duration.json/.safetensors (optional)")
    p.add_argument("--half", action="store_true", help="store the network weights as float16 (half the size)")
    p.set_defaults(run=_assemble)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "sentences", "unset") is None:
        from maskgct.data.synth import SENTENCES

        args.sentences = SENTENCES
    try:
        return args.run(args)
    except (DataDirError, ValueError, OSError) as err:
        return report_error(err)


if __name__ == "__main__":
    sys.exit(main())
