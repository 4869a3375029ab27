"""Zero-shot voice cloning: ``MaskGCT.from_pretrained(...).clone(prompt, prompt_text, text)`` → 24 kHz audio.

Data flow (the official pipeline, step for step)::

    prompt wav ─16 kHz─▶ w2v-BERT layer ▶ normalise ▶ semantic VQ ─────────▶ prompt semantic (Tp)
    prompt wav ─24 kHz─▶ acoustic encoder ▶ residual VQ ───────────────────▶ prompt acoustic (Ta, 12)
    prompt text ++ text ─G2P─▶ phone ids ─┐
    T2S(phones, prompt semantic, T) ──────┴──▶ target semantic (T)
    S2A 1-layer, then S2A full ([prompt semantic | target semantic], prompt acoustic) ▶ codes (Tp+T-Ta, 12)
    acoustic decoder (Vocos) ─────────────────────────────────────────────▶ 24 kHz audio of the target only

The target length T comes from ``duration``: "rule" (the reference's: prompt length × target phones /
prompt phones), "auto" (the flow-matching duration model, ``maskgct.duration``, when the checkpoint folder
has one), or seconds; ``speed`` divides it. Note the reference's one-frame offset: the acoustic prompt
is usually one frame longer than the semantic one, so S2A generates ``Tp + T - Ta`` frames.

Modes:

* ``"reference"``: the same computation and random-draw order as Amphion, including the
  ``torch.rand([])`` per w2v-BERT layer that the reference's transformers version drew before T2S sampling.
  A seed gives the reference's tokens, and its waveform to float precision.
* ``"fast"``: SDPA attention, conditional and unconditional passes batched into one forward, and bfloat16
  autocast on GPU. Tokens may differ from the reference; lengths and the random-draw order do not.

Both modes skip the reference's pure waste: only the w2v-BERT layers up to the used one are run, the
semantic codec's decoder is never built, the prompt is never vocoded, step-invariant inputs are computed
once per call.

Long text: when the estimated target plus the prompt exceeds the 30 s the models were trained on, the
phone ids are split at sentence ends (then clause marks, then word boundaries) into chunks that fit; each
chunk is generated with the same prompt and the chunks are joined with 50 ms equal-power crossfades.

Checkpoint folder (``save_pretrained`` / ``from_pretrained``; ``python -m maskgct.convert`` writes one
from the official release): ``config.json`` (format, version, rates, the Amphion-schema hyper-parameters it
came from), ``t2s``, ``s2a_1layer``, ``s2a_full``, ``acoustic_encoder``, ``acoustic_decoder`` and
``semantic_codec`` (and optionally ``duration``) as ``<name>.json`` + ``<name>.safetensors``
(``maskgct.checkpoint``),
``w2v_bert_stats.safetensors``, ``semantic_tokenizer.json`` (the w2v-BERT folder, relative or absolute, or
a hub id, and its layer) and optionally the w2v-BERT folder itself.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from maskgct.audio import AudioError, check_audio, load_audio, to_mono
from maskgct.checkpoint import CheckpointError, load_network, save_network
from maskgct.codecs.acoustic_codec import AcousticCodec, codec_networks, load_acoustic_codec
from maskgct.codecs.semantic import SemanticTokenizer
from maskgct.duration import DurationModel
from maskgct.s2a import S2A, s2a_generate
from maskgct.sampler import check_mode
from maskgct.t2s import T2S
from maskgct.text import text_to_ids

SAMPLE_RATE = 24000
SEMANTIC_SAMPLE_RATE = 16000
FRAME_RATE = 50
# The models were trained on prompt + target of at most 30 s.
MAX_SECONDS = 30.0
MIN_PROMPT_SECONDS = 1.0
# A prompt whose peak is below this (-80 dBFS) carries no voice to clone.
SILENCE_PEAK = 1e-4
CROSSFADE_SECONDS = 0.05

CONFIG_FILE = "config.json"
CHECKPOINT_FORMAT = "maskgct"
FORMAT_VERSION = 1
T2S_NAME, S2A_1LAYER_NAME, S2A_FULL_NAME = "t2s", "s2a_1layer", "s2a_full"
DURATION_NAME = "duration"  # optional network of a checkpoint folder
DEFAULT_CHECKPOINT_ENV = "MASKGCT_DEFAULT_CHECKPOINT"
# The in-repo default model (written by the recipe), used when no checkpoint is named.
DEFAULT_CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints" / "default"

# Phone ids (official vocabulary) where long inputs may be split, in order of preference.
SENTENCE_END_IDS = frozenset({1, 2, 3, 362})  # . ? ! …
CLAUSE_END_IDS = frozenset({0, 359, 360})  # , : ;
WORD_BOUNDARY_ID = 4  # _

# progress(stage, done, total), e.g. ("text-to-semantic 1/2", 2, 7).
ProgressFn = Callable[[str, int, int], None]


class InputError(ValueError):
    """A request that cannot be synthesised (bad prompt, text, duration or option); the message says why."""


@dataclass(frozen=True)
class SamplingOptions:
    """Decoding settings; the defaults are the official pipeline's."""

    t2s_steps: int = 25
    t2s_cfg: float = 2.5
    t2s_rescale_cfg: float = 0.75
    t2s_temperature: float = 0.9
    # One entry per acoustic layer: layer 0 by the 1-layer model, layers 1.. by the full model (the release's
    # 12 layers; ``for_layers`` fits the same schedule to a codec with another number).
    s2a_steps: tuple[int, ...] = (25, 10, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
    s2a_cfg: float = 2.5
    s2a_rescale_cfg: float = 0.75
    s2a_temperature: float = 1.5
    filter_thres: float = 0.98

    def for_layers(self, num_layers: int) -> SamplingOptions:
        """The default S2A schedule for ``num_layers`` acoustic layers: 25 steps for the first, 10 for the
        second, 1 for each finer one."""
        return replace(self, s2a_steps=(25, 10, *([1] * max(num_layers - 2, 0)))[:num_layers])


@dataclass
class Prompt:
    """An encoded prompt, reusable for many texts.

    semantic: Long(Tp,) tokens; acoustic: Long(Ta, Q) codes; phone_ids: the transcript's phone ids;
    num_samples: length of the 16 kHz audio (the duration rule counts the whole prompt, silences included).
    """

    semantic: torch.Tensor
    acoustic: torch.Tensor
    phone_ids: list[int]
    num_samples: int

    @property
    def seconds(self) -> float:
        return self.num_samples / SEMANTIC_SAMPLE_RATE


@dataclass
class Chunk:
    """One generated piece: phone_ids (target only), semantic Long(T,), codes Long(Tp+T-Ta, Q), audio (L,)."""

    phone_ids: list[int]
    semantic: torch.Tensor
    codes: torch.Tensor
    audio: np.ndarray


@dataclass
class CloneResult:
    audio: np.ndarray  # float32 (L,) at ``sample_rate``
    sample_rate: int
    prompt: Prompt
    chunks: list[Chunk] = field(default_factory=list)


class MaskGCT:
    """The zero-shot TTS system: semantic tokenizer, acoustic codec, T2S and the two S2A models."""

    def __init__(
        self,
        tokenizer: SemanticTokenizer,
        codec: AcousticCodec,
        t2s: T2S,
        s2a_1layer: S2A,
        s2a_full: S2A,
        config: dict | None = None,
        duration: DurationModel | None = None,
    ):
        check_compatible(tokenizer, codec, t2s, s2a_1layer, s2a_full)
        self.tokenizer = tokenizer.eval()
        self.codec = codec.eval()
        self.t2s = t2s.eval()
        self.s2a_1layer = s2a_1layer.eval()
        self.s2a_full = s2a_full.eval()
        self.config = dict(config or {})
        self.duration = duration.eval() if duration is not None else None

    @property
    def device(self) -> torch.device:
        return self.t2s.mask_emb.weight.device

    def to(self, device: str | torch.device) -> MaskGCT:
        for net in (self.tokenizer, self.codec, self.t2s, self.s2a_1layer, self.s2a_full, self.duration):
            if net is not None:
                net.to(device)
        return self

    # ------------------------------------------------------------------------------------- checkpoints
    @classmethod
    def from_pretrained(cls, path_or_hub_id: str | Path, device: str | torch.device = "cpu") -> MaskGCT:
        """Load a checkpoint folder (see the module docstring), or a hub id downloaded when online."""
        folder = resolve_checkpoint(path_or_hub_id)
        config = read_config(folder)
        tokenizer = SemanticTokenizer.from_pretrained(folder, device)
        codec = load_acoustic_codec(folder, device)
        nets = {}
        for name, cls_ in ((T2S_NAME, T2S), (S2A_1LAYER_NAME, S2A), (S2A_FULL_NAME, S2A)):
            nets[name] = load_network(folder, name, device)
            if not isinstance(nets[name], cls_):
                raise CheckpointError(f"{folder / name}.json: expected a {cls_.__name__} network")
        duration = None
        if (folder / f"{DURATION_NAME}.json").is_file():
            duration = load_network(folder, DURATION_NAME, device)
            if not isinstance(duration, DurationModel):
                raise CheckpointError(f"{folder / DURATION_NAME}.json: expected a DurationModel network")
        nets = (nets[T2S_NAME], nets[S2A_1LAYER_NAME], nets[S2A_FULL_NAME])
        return cls(tokenizer, codec, *nets, config, duration)

    def save_pretrained(self, folder: str | Path, w2v_bert: str | None = None) -> None:
        """Write the checkpoint folder; ``w2v_bert`` overrides where it says the w2v-BERT folder is."""
        folder = Path(folder)
        self.tokenizer.save_pretrained(folder, w2v_bert)
        self.codec.save_pretrained(folder)
        save_network(self.t2s, folder, T2S_NAME)
        save_network(self.s2a_1layer, folder, S2A_1LAYER_NAME)
        save_network(self.s2a_full, folder, S2A_FULL_NAME)
        if self.duration is not None:
            save_network(self.duration, folder, DURATION_NAME)
        write_config(folder, self.config.get("amphion_config"), self.config.get("source", "maskgct"))

    # ------------------------------------------------------------------------------------------ prompt
    def encode_prompt(
        self,
        prompt: str | Path | np.ndarray | torch.Tensor,
        prompt_text: str | None = None,
        *,
        prompt_phone_ids: Sequence[int] | None = None,
        language: str = "en",
        sample_rate: int | None = None,
    ) -> Prompt:
        """Prompt audio (a file, or an array at ``sample_rate``) and its transcript → a ``Prompt``."""
        phone_ids = phones_of(prompt_text, prompt_phone_ids, language, "prompt")
        wav16, wav24 = load_prompt(prompt, sample_rate)
        semantic = self.tokenizer.tokenize(wav16).to(self.device)
        wav = torch.from_numpy(wav24).to(self.device)[None, None]
        acoustic = self.codec.encode(wav)[0]
        return Prompt(semantic, acoustic, phone_ids, len(wav16))

    # --------------------------------------------------------------------------------------- synthesis
    def clone(self, prompt, prompt_text: str | None = None, text: str | None = None, **kwargs) -> np.ndarray:
        """Speak ``text`` in the voice of ``prompt``; returns float32 ``(L,)`` audio at 24 kHz.

        prompt: a file path, an array (with ``sample_rate=``) or a ``Prompt`` from ``encode_prompt``;
        prompt_text: what the prompt says. Keyword options: see ``clone_with_details``.
        """
        return self.clone_with_details(prompt, prompt_text, text, **kwargs).audio

    @torch.no_grad()
    def clone_with_details(
        self,
        prompt,
        prompt_text: str | None = None,
        text: str | None = None,
        *,
        prompt_phone_ids: Sequence[int] | None = None,
        phone_ids: Sequence[int] | None = None,
        duration: str | float | None = None,
        speed: float = 1.0,
        seed: int | None = None,
        mode: str = "reference",
        language: str = "en",
        prompt_language: str | None = None,
        sample_rate: int | None = None,
        steps: int | None = None,
        s2a_steps: Sequence[int] | None = None,
        cfg: float | None = None,
        s2a_cfg: float | None = None,
        temperature: float | None = None,
        s2a_temperature: float | None = None,
        progress: ProgressFn | None = None,
    ) -> CloneResult:
        """``clone`` with every intermediate: the prompt tokens and each chunk's tokens and audio.

        duration: None or "rule" (prompt seconds × target phones / prompt phones), "auto" (the
        checkpoint's duration model; an error if it has none), or the target length in seconds;
        speed: > 1 speaks faster (divides the length); seed: seeds a private generator (None: the global
        one); mode: "reference" | "fast";
        phone_ids / prompt_phone_ids: phone ids instead of ``text`` / ``prompt_text``;
        steps / cfg / temperature: T2S overrides; s2a_steps (one entry per acoustic layer) / s2a_cfg /
        s2a_temperature: S2A overrides.
        """
        check_mode_arg(mode)
        options = sampling_options(
            steps, s2a_steps, cfg, s2a_cfg, temperature, s2a_temperature, self.s2a_full.config.num_quantizer
        )
        if len(options.s2a_steps) != self.s2a_full.config.num_quantizer:
            raise InputError(
                f"s2a_steps needs {self.s2a_full.config.num_quantizer} entries, got {len(options.s2a_steps)}"
            )
        target_ids = phones_of(text, phone_ids, language, "text")
        if not isinstance(prompt, Prompt):
            prompt = self.encode_prompt(
                prompt,
                prompt_text,
                prompt_phone_ids=prompt_phone_ids,
                language=prompt_language or language,
                sample_rate=sample_rate,
            )
        check_prompt_seconds(prompt.seconds)
        if duration == "auto" and self.duration is not None:
            # The model's total, then handled like seconds (divided by speed, shared out over chunks).
            duration = self.predicted_seconds(prompt, target_ids)
        budget = int(MAX_SECONDS * FRAME_RATE) - len(prompt.semantic)
        pieces = split_ids(target_ids, chunk_frames(target_ids, prompt, duration, speed), budget)
        generator = self._generator(seed)
        stages = iter(range(1, 3 * len(pieces) + 1))
        chunks = []
        for index, (ids, target_len) in enumerate(pieces):
            label = f" {index + 1}/{len(pieces)}" if len(pieces) > 1 else ""

            def report(stage: str, label=label) -> None:
                done = next(stages)
                if progress:
                    progress(stage + label, done, 3 * len(pieces))

            semantic, codes = self._tokens(prompt, ids, target_len, options, mode, generator, report)
            audio = self.codec.decode(codes[None])[0, 0].float().cpu().numpy()
            report("vocoder")
            chunks.append(Chunk(ids, semantic, codes, audio))
        audio = crossfade_join([c.audio for c in chunks], round(CROSSFADE_SECONDS * SAMPLE_RATE))
        return CloneResult(audio, SAMPLE_RATE, prompt, chunks)

    def clone_batch(
        self, requests: Sequence[dict], *, progress: Callable[[int, int], None] | None = None, **common
    ) -> list[np.ndarray]:
        """Many requests: each a dict of ``clone`` arguments (``prompt``, ``prompt_text``, ``text``, ...),
        over ``common`` defaults. A prompt file used by several requests is encoded once; with a seed,
        each result equals ``clone`` with that seed. Returns the audio of each request, in order."""
        prompts: dict[tuple, Prompt] = {}
        results = []
        for index, request in enumerate(requests):
            args = {**common, **request}
            prompt = args.pop("prompt", None)
            prompt_text = args.pop("prompt_text", None)
            text = args.pop("text", None)
            if isinstance(prompt, (str, Path)):
                key = (
                    str(prompt),
                    prompt_text,
                    tuple(args.get("prompt_phone_ids") or ()),
                    args.get("prompt_language") or args.get("language", "en"),
                )
                if key not in prompts:
                    prompts[key] = self.encode_prompt(
                        prompt,
                        prompt_text,
                        prompt_phone_ids=args.get("prompt_phone_ids"),
                        language=key[3],
                    )
                prompt = prompts[key]
            results.append(self.clone(prompt, prompt_text, text, **args))
            if progress:
                progress(index + 1, len(requests))
        return results

    def _tokens(self, prompt, ids, target_len, options, mode, generator, report):
        """One chunk: phones → target semantic Long(T,) → acoustic codes Long(Tp+T-Ta, Q)."""
        device = self.device
        with self._precision(mode):
            phones = torch.tensor([prompt.phone_ids + ids], device=device)
            semantic = self.t2s.generate(
                phones,
                prompt.semantic[None],
                target_len,
                steps=options.t2s_steps,
                cfg=options.t2s_cfg,
                rescale_cfg=options.t2s_rescale_cfg,
                temp=options.t2s_temperature,
                filter_thres=options.filter_thres,
                mode=mode,
                generator=generator,
            )
            report("text-to-semantic")
            codes = self.semantic_to_acoustic(prompt, semantic[0], options, mode, generator)
            report("semantic-to-acoustic")
        return semantic[0], codes

    def semantic_to_acoustic(
        self,
        prompt: Prompt,
        semantic: torch.Tensor,
        options: SamplingOptions | None = None,
        mode: str = "reference",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """S2A in the prompt's voice: target semantic tokens Long(T,) → acoustic codes Long(Tp+T-Ta, Q)
        (the prompt's own codes are not repeated). Decode them with ``self.codec.decode(codes[None])``."""
        options = options or SamplingOptions().for_layers(self.s2a_full.config.num_quantizer)
        codes = s2a_generate(
            self.s2a_1layer,
            self.s2a_full,
            torch.cat([prompt.semantic, semantic])[None],
            prompt.acoustic[None],
            steps=options.s2a_steps,
            cfg=options.s2a_cfg,
            rescale_cfg=options.s2a_rescale_cfg,
            temp=options.s2a_temperature,
            filter_thres=options.filter_thres,
            mode=mode,
            generator=generator,
        )
        return codes[0]

    def predicted_seconds(self, prompt: Prompt, target_ids: list[int]) -> float:
        """The duration model's length of the whole target, in seconds: the median of its distribution,
        deterministic (no random draw, so the sampling generator's stream is untouched)."""
        prompt_frames = prompt.num_samples * FRAME_RATE / SEMANTIC_SAMPLE_RATE
        return self.duration.predict_utterance(prompt_frames, prompt.phone_ids, target_ids) / FRAME_RATE

    def _generator(self, seed: int | None) -> torch.Generator | None:
        """The sampling generator, on CPU advanced as the reference's w2v-BERT advanced it.

        The reference's transformers drew one ``torch.rand([])`` per encoder layer of the *full* w2v-BERT
        (a LayerDrop check) between the seed and T2S sampling; ours draws none, so they are burned here.
        Both modes do it, so a seed gives both the same random numbers. On GPU the samplers use the CUDA
        generator, which those CPU draws never touched.
        """
        generator = None if seed is None else torch.Generator(self.device).manual_seed(int(seed))
        if self.device.type == "cpu":
            for _ in range(self.tokenizer.num_encoder_layers_total):
                torch.rand([], generator=generator)
        return generator

    def _precision(self, mode: str):
        """Fast mode on GPU runs the transformers under bfloat16 autocast (the sampler works in float32)."""
        if mode == "fast" and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


# ------------------------------------------------------------------------------------------ validation
def check_mode_arg(mode: str) -> None:
    try:
        check_mode(mode)
    except ValueError as err:
        raise InputError(str(err)) from None


def sampling_options(
    steps, s2a_steps, cfg, s2a_cfg, temperature, s2a_temperature, num_layers: int = 12
) -> SamplingOptions:
    overrides = {
        "t2s_steps": steps,
        "s2a_steps": None if s2a_steps is None else tuple(int(s) for s in s2a_steps),
        "t2s_cfg": cfg,
        "s2a_cfg": s2a_cfg,
        "t2s_temperature": temperature,
        "s2a_temperature": s2a_temperature,
    }
    defaults = SamplingOptions().for_layers(num_layers)
    options = replace(defaults, **{k: v for k, v in overrides.items() if v is not None})
    if options.t2s_steps < 1 or any(s < 1 for s in options.s2a_steps):
        raise InputError("the number of decoding steps must be at least 1")
    if options.t2s_cfg < 0 or options.s2a_cfg < 0:
        raise InputError("cfg must be >= 0")
    if options.t2s_temperature <= 0 or options.s2a_temperature <= 0:
        raise InputError("temperature must be > 0")
    return options


def phones_of(text: str | None, ids: Sequence[int] | None, language: str, what: str) -> list[int]:
    """Phone ids of ``text`` (G2P) or the ``ids`` given instead; clear errors for missing/empty input."""
    if ids is not None:
        if text is not None:
            raise InputError(f"give the {what} as text or as phone ids, not both")
        ids = [int(i) for i in ids]
        if not ids:
            raise InputError(f"the {what} phone ids are empty")
        if min(ids) < 0 or max(ids) >= 1023:
            raise InputError(f"{what} phone ids must lie in [0, 1023)")
        return ids
    if text is None:
        if what == "prompt":
            raise InputError("the prompt text is missing: give the transcript of the prompt audio")
        raise InputError("the text to speak is missing")
    if not text.strip():
        raise InputError("the text to speak is empty" if what == "text" else f"the {what} text is empty")
    try:
        return text_to_ids(text, language)
    except ValueError as err:
        raise InputError(f"{what} text: {err}") from None


def load_prompt(prompt, sample_rate: int | None) -> tuple[np.ndarray, np.ndarray]:
    """A file path or an array → mono float32 at 16 kHz and at 24 kHz, each resampled from the source (as
    the reference's two ``librosa.load`` calls). Rejects silent, too short and too long prompts."""
    if isinstance(prompt, (str, Path)):
        if sample_rate is not None:
            raise InputError("sample_rate is only for a prompt given as an array")
        wav16, wav24 = load_audio(prompt, SEMANTIC_SAMPLE_RATE), load_audio(prompt, SAMPLE_RATE)
        name = f"prompt {prompt}"
    else:
        if sample_rate is None:
            raise InputError("a prompt given as an array needs its sample_rate")
        if isinstance(prompt, torch.Tensor):
            prompt = prompt.detach().cpu().numpy()
        prompt = check_audio(np.asarray(prompt, dtype=np.float32), "prompt")
        wav16 = to_mono(prompt, sample_rate, SEMANTIC_SAMPLE_RATE, "prompt")
        wav24 = to_mono(prompt, sample_rate, SAMPLE_RATE, "prompt")
        name = "prompt"
    seconds = len(wav16) / SEMANTIC_SAMPLE_RATE
    if seconds < MIN_PROMPT_SECONDS:
        raise AudioError(
            f"{name} is too short ({seconds:.2f} s); at least {MIN_PROMPT_SECONDS:g} s is needed"
        )
    check_prompt_seconds(seconds, name)
    if float(np.abs(wav16).max()) < SILENCE_PEAK:
        raise AudioError(f"{name} is silent")
    return wav16, wav24


def check_prompt_seconds(seconds: float, name: str = "prompt") -> None:
    if seconds > MAX_SECONDS:
        raise AudioError(
            f"{name} is too long ({seconds:.1f} s); at most {MAX_SECONDS:g} s (prompt plus output) "
            "fits the model: cut it to 3-15 s"
        )


def check_compatible(tokenizer, codec, t2s, s2a_1layer, s2a_full) -> None:
    """Raise ``CheckpointError`` unless the five networks fit together."""
    vocab = tokenizer.codec.config.codebook_size
    problems = []
    for name, net in (("t2s", t2s), ("s2a_1layer", s2a_1layer), ("s2a_full", s2a_full)):
        if net.config.cond_codebook_size != vocab:
            problems.append(
                f"{name} reads {net.config.cond_codebook_size} semantic codes, the tokenizer has {vocab}"
            )
    if s2a_1layer.config.num_quantizer != 1:
        problems.append(f"s2a_1layer predicts {s2a_1layer.config.num_quantizer} layers, not 1")
    if s2a_full.config.num_quantizer != codec.num_quantizers:
        problems.append(
            f"s2a_full predicts {s2a_full.config.num_quantizer} layers, the codec has {codec.num_quantizers}"
        )
    for name, net in (("s2a_1layer", s2a_1layer), ("s2a_full", s2a_full)):
        if net.config.codebook_size != codec.codebook_size:
            problems.append(
                f"{name} has {net.config.codebook_size} acoustic codes, the codec has {codec.codebook_size}"
            )
    if problems:
        raise CheckpointError("incompatible networks: " + "; ".join(problems))


# ------------------------------------------------------------------------------------------ durations
def target_frames(n_target: int, prompt: Prompt, duration: str | float | None, speed: float) -> int:
    """Target semantic frames T for ``n_target`` phones.

    "rule" is the reference's ``int(len(wav_16k) * n_target / n_prompt / 16000 * 50)``, evaluated in
    float64 left to right (then divided by ``speed``, exact at 1.0); seconds give ``int(s * 50 / speed)``.
    """
    if duration is None or duration == "rule":
        frames = prompt.num_samples * n_target / len(prompt.phone_ids) / SEMANTIC_SAMPLE_RATE * FRAME_RATE
    elif duration == "auto":
        raise InputError("no duration model in this checkpoint: use duration='rule' or a number of seconds")
    elif isinstance(duration, str):
        raise InputError(f"duration must be 'rule', 'auto' or seconds, not {duration!r}")
    else:
        if not duration > 0 or not math.isfinite(duration):
            raise InputError(f"duration must be a positive number of seconds, not {duration!r}")
        frames = duration * FRAME_RATE
    return int(frames / speed)


def chunk_frames(target_ids: list[int], prompt: Prompt, duration, speed: float) -> Callable[[int], int]:
    """``frames(n_phones)``: the target length of a chunk of ``n_phones`` of ``target_ids``.

    With the rule the length is the rule itself; with seconds the whole duration is shared out in
    proportion to phone counts (a single chunk gets exactly ``int(s * 50 / speed)``).
    """
    if not (isinstance(speed, (int, float)) and speed > 0 and math.isfinite(speed)):
        raise InputError(f"speed must be a positive number, not {speed!r}")
    total = target_frames(len(target_ids), prompt, duration, speed)
    minimum = max(1, len(prompt.acoustic) - len(prompt.semantic) + 1)
    if duration is None or isinstance(duration, str):
        return lambda n: max(minimum, target_frames(n, prompt, duration, speed))
    return lambda n: max(minimum, total if n == len(target_ids) else int(total * n / len(target_ids)))


def split_ids(ids: list[int], frames: Callable[[int], int], budget: int) -> list[tuple[list[int], int]]:
    """Split phone ids into ``[(chunk_ids, target_frames)]`` whose frames fit ``budget``.

    The budget is what the prompt leaves of the 30 s. Whole input first; otherwise sentences are packed
    greedily, a sentence too long alone is split at clause marks, and a clause at word boundaries.
    """
    if frames(len(ids)) <= budget:
        return [(ids, frames(len(ids)))]
    if budget < FRAME_RATE:
        raise InputError(
            f"the prompt leaves only {max(budget, 0) / FRAME_RATE:.1f} s of the {MAX_SECONDS:g} s the model "
            "can generate: use a shorter prompt"
        )
    chunks: list[list[int]] = []
    for sentence in split_after(ids, SENTENCE_END_IDS):
        for piece in fit(sentence, frames, budget):
            if chunks and frames(len(chunks[-1]) + len(piece)) <= budget:
                chunks[-1] = chunks[-1] + piece
            else:
                chunks.append(piece)
    planned = [(chunk, frames(len(chunk))) for chunk in chunks]
    longest = max(n for _, n in planned)
    if longest > budget:  # a single word asked to last longer than the model can generate
        raise InputError(
            f"a piece of the text that cannot be split would last {longest / FRAME_RATE:.1f} s, more than "
            f"the {budget / FRAME_RATE:.1f} s the prompt leaves of {MAX_SECONDS:g} s: ask for less"
        )
    return planned


def fit(ids: list[int], frames: Callable[[int], int], budget: int) -> list[list[int]]:
    """Pieces of one sentence that each fit the budget (clauses, then runs of words; a single word that is
    still too long is kept whole)."""
    if frames(len(ids)) <= budget:
        return [ids]
    pieces: list[list[int]] = []
    for clause in split_after(ids, CLAUSE_END_IDS):
        if frames(len(clause)) <= budget:
            pieces.append(clause)
            continue
        for word in split_after(clause, frozenset({WORD_BOUNDARY_ID})):
            if pieces and frames(len(pieces[-1]) + len(word)) <= budget:
                pieces[-1] = pieces[-1] + word
            else:
                pieces.append(word)
    return pieces


def split_after(ids: list[int], marks: frozenset[int]) -> list[list[int]]:
    """Split after every id in ``marks`` (the mark stays with the piece before it); no empty pieces."""
    pieces, current = [], []
    for i in ids:
        current.append(i)
        if i in marks:
            pieces.append(current)
            current = []
    if current:
        pieces.append(current)
    return pieces


def crossfade_join(pieces: list[np.ndarray], overlap: int) -> np.ndarray:
    """Join audio pieces with equal-power crossfades of ``overlap`` samples (shorter if a piece is)."""
    out = pieces[0]
    for piece in pieces[1:]:
        n = min(overlap, len(out), len(piece))
        if n == 0:
            out = np.concatenate([out, piece])
            continue
        ramp = (np.arange(n, dtype=np.float64) + 0.5) / n * (np.pi / 2)
        mixed = out[-n:] * np.cos(ramp) + piece[:n] * np.sin(ramp)
        out = np.concatenate([out[:-n], mixed.astype(np.float32), piece[n:]])
    return out.astype(np.float32, copy=False)


# ------------------------------------------------------------------------------------- checkpoint files
def resolve_checkpoint(path_or_hub_id: str | Path) -> Path:
    """A local checkpoint folder, or a Hugging Face hub id fetched with ``snapshot_download``."""
    path = Path(path_or_hub_id).expanduser()
    if path.is_dir():
        return path
    name = str(path_or_hub_id)
    if path.is_absolute() or name.startswith(".") or name.count("/") != 1:
        raise CheckpointError(f"checkpoint folder not found: {name}")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(name))
    except Exception as err:  # offline, unknown repo, network errors
        raise CheckpointError(
            f"checkpoint {name!r} is not a local folder and could not be downloaded from the Hugging Face "
            f"hub ({type(err).__name__}; offline?)"
        ) from None


def read_config(folder: Path) -> dict:
    """Read and check ``config.json`` of a checkpoint folder."""
    path = folder / CONFIG_FILE
    if (folder / "t2s_model").is_dir() and (folder / "s2a_model").is_dir():
        raise CheckpointError(
            f"{folder} is an official Amphion snapshot: convert it first with "
            "`python -m maskgct.convert amphion SRC OUT --w2v-bert DIR --w2v-stats FILE`"
        )
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a maskgct checkpoint folder (no {CONFIG_FILE})")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: invalid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a maskgct checkpoint (format is not {CHECKPOINT_FORMAT!r})")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version!r} is newer than this maskgct supports "
            f"({FORMAT_VERSION}); upgrade maskgct"
        )
    return config


def write_config(folder: Path, amphion_config: dict | None, source: str) -> None:
    config = {
        "format": CHECKPOINT_FORMAT,
        "format_version": FORMAT_VERSION,
        "source": source,
        "sample_rate": SAMPLE_RATE,
        "semantic_sample_rate": SEMANTIC_SAMPLE_RATE,
        "frame_rate": FRAME_RATE,
        "networks": [T2S_NAME, S2A_1LAYER_NAME, S2A_FULL_NAME, *codec_networks(folder), "semantic_codec"],
    }
    if amphion_config is not None:
        config["amphion_config"] = amphion_config
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def default_checkpoint() -> Path:
    """The default model: ``$MASKGCT_DEFAULT_CHECKPOINT``, else ``checkpoints/default`` in the repository."""
    import os

    env = os.environ.get(DEFAULT_CHECKPOINT_ENV)
    path = Path(env).expanduser() if env else DEFAULT_CHECKPOINT_DIR
    if not (path / CONFIG_FILE).is_file():
        raise CheckpointError(
            f"no checkpoint given and no default model at {path}: pass --checkpoint DIR "
            f"(e.g. one made by `python -m maskgct.convert`) or set {DEFAULT_CHECKPOINT_ENV}"
        )
    return path
