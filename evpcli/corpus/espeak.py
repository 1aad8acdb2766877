"""Speech synthesis with phoneme timing: a small ctypes binding to the libespeak-ng that ``espeakng-loader`` ships.

:func:`synthesize` turns English text into 22 050 Hz speech plus a phoneme timeline (espeak's phoneme
mnemonics, e.g. ``h @ l oU``, with start times in seconds), under a voice (``en+m3``, ``en+f2``, ...) and
prosody settings (rate in words per minute, base pitch and pitch range 0-100, volume, gap between words).

libespeak-ng keeps global state, so one process synthesises one utterance at a time (a lock guards it);
parallel corpus generation uses worker processes, each initialising its own copy. Values below come from
espeak-ng's public header ``speak_lib.h`` (API revision 12).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import threading
from dataclasses import dataclass

import numpy as np

from evpcli.errors import EvpError

ESPEAK_SAMPLE_RATE = 22050

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_PARAM = {"rate": 1, "volume": 2, "pitch": 3, "range": 4, "wordgap": 7}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds from the start of the utterance
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Prosody:
    """espeak's own prosody parameters: rate (words/min, 80-450), pitch and range (0-100), volume (0-200),
    wordgap (extra pause between words, units of 10 ms)."""

    rate: int = 165
    pitch: int = 50
    range: int = 50
    volume: int = 100
    wordgap: int = 0


@dataclass
class Utterance:
    """One synthesised utterance.

    ``wav``: (N,) float32 in [-1, 1] at ``sample_rate`` Hz. ``phonemes``: list of (start_s, end_s, name);
    a phoneme ends where the next one starts, the last at the end of the audio; espeak's pause phoneme
    is ``_``. ``words``: list of (start_s, text_position) word onsets.
    """

    wav: np.ndarray
    sample_rate: int
    phonemes: list[tuple[float, float, str]]
    words: list[tuple[float, int]]


class _Engine:
    def __init__(self) -> None:
        import espeakng_loader

        try:
            self.lib = ctypes.CDLL(str(espeakng_loader.get_library_path()))
        except OSError as exc:
            raise EvpError(f"cannot load libespeak-ng ({exc}); reinstall it with: pip install espeakng-loader") from exc
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.restype = ctypes.c_int
        # espeak-ng draws random numbers (phoneme lengths, noise); seeding it makes synthesis repeatable.
        self._set_seed = getattr(lib, "espeak_ng_SetRandSeed", None)
        if self._set_seed is not None:
            self._set_seed.argtypes = [ctypes.c_long]
            self._set_seed.restype = None
        data = str(espeakng_loader.get_data_path()).encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data,
                                     _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise EvpError(f"libespeak-ng failed to initialise with data at {data.decode()}; "
                           "reinstall it with: pip install --force-reinstall espeakng-loader")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str, int]] = []
        self._callback = _CALLBACK(self._on_audio)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)
        self.lock = threading.Lock()

    def _on_audio(self, wav, n, events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((ev.type, ev.audio_position, name, ev.text_position))
            elif ev.type in (_EVENT_WORD, _EVENT_END):
                self._events.append((ev.type, ev.audio_position, "", ev.text_position))
            i += 1
        return 0

    def synthesize(self, text: str, voice: str, prosody: Prosody, seed: int = 0) -> Utterance:
        lib = self.lib
        with self.lock:
            if self._set_seed is not None:
                self._set_seed(int(seed) & 0x7FFFFFFF)
            if lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise EvpError(f"espeak-ng has no voice {voice!r}; use e.g. 'en+m3' or 'en+f2'")
            for name, value in (("rate", prosody.rate), ("pitch", prosody.pitch), ("range", prosody.range),
                                ("volume", prosody.volume), ("wordgap", prosody.wordgap)):
                lib.espeak_SetParameter(_PARAM[name], int(value), 0)
            self._chunks, self._events = [], []
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            if err != 0:
                raise EvpError(f"espeak-ng failed to synthesise {text[:40]!r} (error {err})")
            chunks, events = self._chunks, self._events
        wav = (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)).astype(np.float32) / 32768.0
        duration = len(wav) / self.sample_rate
        starts = [(pos / 1000.0, name) for kind, pos, name, _ in events if kind == _EVENT_PHONEME]
        phonemes = []
        for i, (t0, name) in enumerate(starts):
            t1 = starts[i + 1][0] if i + 1 < len(starts) else duration
            phonemes.append((min(t0, duration), min(max(t1, t0), duration), name))
        words = [(pos / 1000.0, tp) for kind, pos, _, tp in events if kind == _EVENT_WORD]
        return Utterance(wav=wav, sample_rate=self.sample_rate, phonemes=phonemes, words=words)


_ENGINE: _Engine | None = None
_ENGINE_LOCK = threading.Lock()


def engine() -> _Engine:
    """The process's espeak-ng engine (initialised once)."""
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


def synthesize(text: str, voice: str = "en+m3", prosody: Prosody = Prosody(), seed: int = 0) -> Utterance:
    """Speak ``text`` with espeak-ng: 22 050 Hz float32 speech and its phoneme timeline.

    libespeak-ng carries state from one utterance to the next (the same call gives slightly different
    samples and phoneme lengths the second time), so where the OS can fork, each utterance is synthesised in
    a short-lived child of a process whose engine has never spoken: the same arguments give the same bytes
    whatever was synthesised before. ``seed`` seeds espeak-ng's random generator.
    """
    eng = engine()
    if not hasattr(os, "fork"):
        return eng.synthesize(text, voice, prosody, seed)
    with eng.lock:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: speak, send the result, exit without running any parent cleanup
            code = 0
            try:
                os.close(read_fd)
                eng.lock = threading.Lock()
                payload = pickle.dumps(("ok", eng.synthesize(text, voice, prosody, seed)))
            except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
                payload, code = pickle.dumps(("error", f"{type(exc).__name__}: {exc}")), 1
            try:
                with os.fdopen(write_fd, "wb") as f:
                    f.write(payload)
            finally:
                os._exit(code)
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as f:
            data = f.read()
        os.waitpid(pid, 0)
    if not data:
        raise EvpError(f"espeak-ng crashed while synthesising {text[:40]!r}")
    status, value = pickle.loads(data)
    if status != "ok":
        raise EvpError(f"espeak-ng failed on {text[:40]!r}: {value}")
    return value
