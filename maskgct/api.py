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
* ``"fast"``: SDPA attention, guidance without padding work, and the transformers in bfloat16 where the
  device multiplies it natively (``maskgct.precision``; ``precision="bfloat16"`` also stores them in it,
  for half the memory). Tokens may differ from the reference; lengths and the random-draw order do not.

Both modes skip the reference's pure waste: only the w2v-BERT layers up to the used one are run, the
semantic codec's decoder is never built, the prompt is never vocoded, step-invariant inputs are computed
once per call.

Long text is generated in chunks that fit the 30 s the models were trained on (``maskgct.longtext``);
requests are checked before any network runs (``maskgct.request``); the checkpoint folder is described in
``maskgct.checkpoint``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from maskgct.batching import clone_plans
from maskgct.checkpoint import (
    DURATION_NAME,
    S2A_1LAYER_NAME,
    S2A_FULL_NAME,
    T2S_NAME,
    load_network,
    read_config,
    resolve_checkpoint,
    save_network,
    write_config,
)
from maskgct.codecs.acoustic_codec import AcousticCodec, codec_networks, load_acoustic_codec
from maskgct.codecs.mel_codec import fit_frames
from maskgct.codecs.semantic import SemanticTokenizer
from maskgct.constants import FRAME_RATE, SAMPLE_RATE, SEMANTIC_SAMPLE_RATE
from maskgct.duration import DurationModel
from maskgct.longtext import CROSSFADE_SECONDS, crossfade_join, plan_chunks
from maskgct.precision import check_precision, computing_in, fast_dtype, store_linears
from maskgct.prompt import prepare_prompt
from maskgct.request import (
    InputError,
    check_compatible,
    check_mode_arg,
    check_prompt_seconds,
    phones_of,
    sampling_options,
)
from maskgct.s2a import S2A, s2a_generate
from maskgct.sampler import SamplingOptions
from maskgct.t2s import T2S

# progress(stage, done, total), e.g. ("text-to-semantic 1/2", 2, 7).
ProgressFn = Callable[[str, int, int], None]


@dataclass
class Prompt:
    """An encoded prompt, reusable for many texts.

    semantic: Long(Tp,) tokens; acoustic: Long(Ta, Q) codes; phone_ids: the transcript's phone ids;
    num_samples: length of the 16 kHz audio (the duration rule counts the whole prompt, silences included);
    transcript: the text of ``phone_ids`` (whisper's when none was given); notes: what ``encode_prompt``
    did to the prompt (trimmed, transcribed), one sentence each.
    """

    semantic: torch.Tensor
    acoustic: torch.Tensor
    phone_ids: list[int]
    num_samples: int
    transcript: str | None = None
    notes: list[str] = field(default_factory=list)

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
class Plan:
    """A checked request: its encoded prompt, its chunks ``[(phone ids, target frames)]``, decoding
    settings, mode and random generator (None: the global one)."""

    prompt: Prompt
    pieces: list[tuple[list[int], int]]
    options: SamplingOptions
    mode: str
    generator: torch.Generator | None


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
        precision: str = "auto",
    ):
        check_compatible(tokenizer, codec, t2s, s2a_1layer, s2a_full)
        check_precision(precision)
        self.tokenizer = tokenizer.eval()
        self.codec = codec.eval()
        self.t2s = t2s.eval()
        self.s2a_1layer = s2a_1layer.eval()
        self.s2a_full = s2a_full.eval()
        self.config = dict(config or {})
        self.duration = duration.eval() if duration is not None else None
        self.precision = precision
        if precision == "bfloat16":
            for net in (self.t2s, self.s2a_1layer, self.s2a_full):
                store_linears(net, torch.bfloat16)

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
    def from_pretrained(
        cls, path_or_hub_id: str | Path, device: str | torch.device = "cpu", precision: str = "auto"
    ) -> MaskGCT:
        """Load a checkpoint folder (see ``maskgct.checkpoint``), or a hub id downloaded when online.
        precision: "auto" | "float32" | "bfloat16" (fast mode only, half the memory); see
        ``maskgct.precision``."""
        check_precision(precision)
        folder = resolve_checkpoint(path_or_hub_id)
        config = read_config(folder)
        # bfloat16 weights are converted network by network as they load: float32 copies never pile up.
        linear_dtype = torch.bfloat16 if precision == "bfloat16" else None
        tokenizer = SemanticTokenizer.from_pretrained(folder, device)
        codec = load_acoustic_codec(folder, device)
        t2s = load_network(folder, T2S_NAME, device, T2S, linear_dtype)
        s2a = [
            load_network(folder, name, device, S2A, linear_dtype) for name in (S2A_1LAYER_NAME, S2A_FULL_NAME)
        ]
        duration = None
        if (folder / f"{DURATION_NAME}.json").is_file():
            duration = load_network(folder, DURATION_NAME, device, DurationModel)
        return cls(tokenizer, codec, t2s, *s2a, config, duration, precision)

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
        write_config(
            folder,
            codec_networks(folder),
            self.config.get("amphion_config"),
            self.config.get("source", "maskgct"),
        )

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
        """Prompt audio (a file, or an array at ``sample_rate``) and its transcript → a ``Prompt``.

        Without a transcript the prompt is transcribed by whisper tiny.en; a recording over 15 s is trimmed
        at a pause (``maskgct.prompt``). ``Prompt.notes`` says when either happened.
        """
        prepared = prepare_prompt(prompt, prompt_text, prompt_phone_ids, language, sample_rate)
        semantic = self.tokenizer.tokenize(prepared.wav16).to(self.device)
        wav = torch.from_numpy(prepared.wav24).to(self.device)[None, None]
        acoustic = self.codec.encode(wav)[0]
        return Prompt(
            semantic, acoustic, prepared.phone_ids, len(prepared.wav16), prepared.transcript, prepared.notes
        )

    # --------------------------------------------------------------------------------------- synthesis
    def clone(self, prompt, prompt_text: str | None = None, text: str | None = None, **kwargs) -> np.ndarray:
        """Speak ``text`` in the voice of ``prompt``; returns float32 ``(L,)`` audio at 24 kHz.

        prompt: a file path, an array (with ``sample_rate=``) or a ``Prompt`` from ``encode_prompt``;
        prompt_text: what the prompt says (None: whisper transcribes it). Keyword options: see
        ``plan``.
        """
        return self.clone_with_details(prompt, prompt_text, text, **kwargs).audio

    @torch.no_grad()
    def clone_with_details(
        self,
        prompt,
        prompt_text: str | None = None,
        text: str | None = None,
        *,
        progress: ProgressFn | None = None,
        **options,
    ) -> CloneResult:
        """``clone`` with every intermediate: the prompt tokens and each chunk's tokens and audio.
        ``options``: the request's settings, as ``plan`` takes them."""
        return self._synthesise(self.plan(prompt, prompt_text, text, **options), progress)

    def plan(
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
    ) -> Plan:
        """A request checked, its prompt encoded and its text planned into chunks.

        duration: None or "rule" (prompt seconds × target phones / prompt phones), "auto" (the
        checkpoint's duration model; an error if it has none), or the target length in seconds;
        speed: > 1 speaks faster (divides the length); seed: seeds a private generator (None: the global
        one); mode: "reference" | "fast";
        phone_ids / prompt_phone_ids: phone ids instead of ``text`` / ``prompt_text``;
        steps / cfg / temperature: T2S overrides; s2a_steps (one entry per acoustic layer) / s2a_cfg /
        s2a_temperature: S2A overrides.
        """
        self.check_mode(mode)
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
        pieces = plan_chunks(target_ids, prompt, duration, speed)
        return Plan(prompt, pieces, options, mode, self._generator(seed))

    def _synthesise(self, plan: Plan, progress: ProgressFn | None = None) -> CloneResult:
        """Generate a planned request chunk by chunk and join the chunks."""
        prompt, pieces = plan.prompt, plan.pieces
        stages = iter(range(1, 3 * len(pieces) + 1))
        chunks = []
        for index, (ids, target_len) in enumerate(pieces):
            label = f" {index + 1}/{len(pieces)}" if len(pieces) > 1 else ""

            def report(stage: str, label=label) -> None:
                done = next(stages)
                if progress:
                    progress(stage + label, done, 3 * len(pieces))

            semantic, codes = self._tokens(
                prompt, ids, target_len, plan.options, plan.mode, plan.generator, report
            )
            audio = self.decode(codes, frame_semantic(prompt, semantic))
            report("vocoder")
            chunks.append(Chunk(ids, semantic, codes, audio))
        audio = crossfade_join([c.audio for c in chunks], round(CROSSFADE_SECONDS * SAMPLE_RATE))
        return CloneResult(audio, SAMPLE_RATE, prompt, chunks)

    def clone_batch(
        self,
        requests: Sequence[dict],
        *,
        batch_size: int = 8,
        progress: Callable[[int, int], None] | None = None,
        **common,
    ) -> list[np.ndarray]:
        """Many requests: each a dict of ``clone`` arguments (``prompt``, ``prompt_text``, ``text``, ...),
        over ``common`` defaults. A prompt file used by several requests is encoded once. Requests of one
        chunk that share their decoding settings are decoded ``batch_size`` at a time in one padded batch
        (``maskgct.batching``), each with its own random stream: with a seed, each result equals ``clone``
        with that seed in reference mode (in fast mode up to float differences). Returns the audio of each
        request, in order."""
        if batch_size < 1:
            raise InputError(f"batch_size must be at least 1, not {batch_size}")
        cache, plans = PromptCache(self), []
        for request in requests:
            args = {**common, **request}
            prompt, prompt_text, text = (args.pop(k, None) for k in ("prompt", "prompt_text", "text"))
            if isinstance(prompt, (str, Path)):
                language = args.get("prompt_language") or args.get("language", "en")
                prompt = cache.get(prompt, prompt_text, args.get("prompt_phone_ids"), language)
            plans.append(self.plan(prompt, prompt_text, text, **args))
        results: list[np.ndarray | None] = [None] * len(plans)
        groups: dict[tuple, list[int]] = {}
        for index, plan in enumerate(plans):
            if len(plan.pieces) == 1:  # long texts (several chunks) are generated alone
                groups.setdefault((plan.mode, plan.options), []).append(index)
            else:
                results[index] = self._synthesise(plan).audio
                if progress:
                    progress(sum(r is not None for r in results), len(plans))
        for indices in groups.values():
            for start in range(0, len(indices), batch_size):
                batch = indices[start : start + batch_size]
                if len(batch) == 1:  # alone: the unbatched path exactly
                    audios = [self._synthesise(plans[batch[0]]).audio]
                else:
                    audios = clone_plans(self, [plans[i] for i in batch])
                for index, audio in zip(batch, audios, strict=True):
                    results[index] = audio
                if progress:
                    progress(sum(r is not None for r in results), len(plans))
        return results

    def _tokens(self, prompt, ids, target_len, options, mode, generator, report):
        """One chunk: phones → target semantic Long(T,) → acoustic codes Long(Tp+T-Ta, Q)."""
        device = self.device
        with self._precision(mode):
            phones = torch.tensor([prompt.phone_ids + ids], device=device)
            semantic = self.t2s.generate(
                phones, prompt.semantic[None], target_len, options.t2s_steps, options.t2s(mode, generator)
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
        (the prompt's own codes are not repeated). Decode them with
        ``self.decode(codes, frame_semantic(prompt, semantic))``."""
        options = options or SamplingOptions().for_layers(self.s2a_full.config.num_quantizer)
        codes = s2a_generate(
            self.s2a_1layer,
            self.s2a_full,
            torch.cat([prompt.semantic, semantic])[None],
            prompt.acoustic[None],
            options.s2a_steps,
            options.s2a(mode, generator),
        )
        return codes[0]

    def decode(self, codes: torch.Tensor, semantic: torch.Tensor | None = None) -> np.ndarray:
        """Acoustic codes Long(T, Q) → float32 audio (T · 480,) at 24 kHz.

        semantic: Long(T,), the semantic tokens S2A conditioned those frames on (``frame_semantic``). A codec
        whose decoder reads them (``reads_semantic``: the default model's mel codec) decodes with them;
        other codecs (the official one) decode the codes alone.
        """
        if semantic is not None and self.codec.reads_semantic:
            audio = self.codec.decode(codes[None], fit_frames(semantic, len(codes))[None])
        else:
            audio = self.codec.decode(codes[None])
        return audio[0, 0].float().cpu().numpy()

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

    def check_mode(self, mode: str) -> None:
        """``InputError`` for an unknown mode, or for reference mode with weights stored in bfloat16."""
        check_mode_arg(mode)
        if mode == "reference" and self.precision == "bfloat16":
            raise InputError(
                "reference mode needs float32 weights; this model was loaded with precision='bfloat16', "
                "for fast mode only"
            )

    def _precision(self, mode: str):
        """What the transformers run under: nothing in reference mode, autocast in ``fast_dtype`` in fast
        mode (the sampler works in float32 either way)."""
        self.check_mode(mode)
        if mode == "reference":
            return contextlib.nullcontext()
        return computing_in(fast_dtype(self.device, self.precision), self.device)

    def convert_voice(self, source, reference, **options) -> np.ndarray:
        """Say what ``source`` says in the voice of ``reference`` (no transcript needed); float32 ``(L,)``
        at 24 kHz, the source's length. Options: see ``maskgct.vc.convert_voice``."""
        from maskgct.vc import convert_voice  # maskgct.vc imports this module

        return convert_voice(self, source, reference, **options).audio

    def edit(self, audio, text: str, new_text: str, **options):
        """Make the recording ``audio``, which says ``text``, say ``new_text`` in its speaker's voice.
        Returns a ``maskgct.edit.EditResult``: the 24 kHz audio (``.audio``) and the plan (``.spans``: the
        words changed, the original time span, the new length). Options: see ``maskgct.edit.edit_speech``."""
        from maskgct.edit import edit_speech  # maskgct.edit imports this module

        return edit_speech(self, audio, text, new_text, **options)


def frame_semantic(prompt: Prompt, semantic: torch.Tensor) -> torch.Tensor:
    """The semantic tokens S2A conditioned its generated frames on, Long(Tp+T-Ta,): the prompt's ++ the
    target's ``semantic`` Long(T,), from the acoustic prompt's length on (S2A's alignment)."""
    return torch.cat([prompt.semantic, semantic])[len(prompt.acoustic) :]


class PromptCache:
    """Encoded prompts by (file, transcript, phone ids, language): a prompt file used by several requests
    is encoded once."""

    def __init__(self, tts: MaskGCT):
        self.tts = tts
        self.prompts: dict[tuple, Prompt] = {}

    def get(
        self,
        prompt: str | Path,
        prompt_text: str | None,
        prompt_phone_ids: Sequence[int] | None = None,
        language: str = "en",
    ) -> Prompt:
        key = (str(prompt), prompt_text, tuple(prompt_phone_ids or ()), language)
        if key not in self.prompts:
            self.prompts[key] = self.tts.encode_prompt(
                prompt, prompt_text, prompt_phone_ids=prompt_phone_ids, language=language
            )
        return self.prompts[key]
