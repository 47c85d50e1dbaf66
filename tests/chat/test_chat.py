"""distillab-chat: sources built as in training, cleaned input, clean exits, piped input."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from distillab.chat.app import chat
from distillab.chat.replier import ContextSettings
from distillab.chat.session import Session, clean
from distillab.train import run_job
from tests.conftest import TINY, compose_cfg, synthetic_conversations, write_jsonl
from tests.hf_tiny import tiny_tokenizer


class EchoReplier:
    """Answers with the last two ids of its source; remembers what it was given."""

    def __init__(self, context_turns: int = 2, max_source_len: int = 8) -> None:
        self.tokenizer = tiny_tokenizer("bart")
        self.tokenizer.add_tokens(["<self>", "<other>"], special_tokens=True)
        self.settings = ContextSettings(context_turns, max_source_len, 6)
        self.sources: list[list[int]] = []

    def reply(self, src: list[int]) -> list[int]:
        self.sources.append(src)
        return src[-2:]


def test_clean_strips_control_characters():
    assert clean("\x07fine \x1b[31mthanks\tyou\r\n") == "fine [31mthanks you"
    assert clean("  \x00 \n") == ""


def test_sources_are_built_like_training_contexts():
    r = EchoReplier(context_turns=2, max_source_len=8)
    s = Session(r)
    ids = lambda t: r.tokenizer(t, add_special_tokens=False)["input_ids"]  # noqa: E731
    s.respond("hello")
    assert r.sources[0] == [s.other_id, *ids("hello")]
    s.respond("how are you")  # context: the model's reply (<self>), then the user (<other>)
    assert r.sources[1] == [s.self_id, *s.turns[1], s.other_id, *ids("how are you")]


def test_long_input_is_truncated_with_a_notice():
    r = EchoReplier(max_source_len=4)
    reply, notice = Session(r).respond("hello how are you fine thanks")
    assert notice is not None and "truncated" in notice
    assert len(r.sources[0]) == 4 and reply == "fine thanks"


def test_empty_line_and_end_of_input_end_the_chat():
    for text in ("hello\n\nnever read\n", "hello\nhow are you"):
        out = io.StringIO()
        chat(Session(EchoReplier()), io.StringIO(text), out, io.StringIO(), interactive=False)
        assert len(out.getvalue().splitlines()) == (1 if "\n\n" in text else 2)


@pytest.mark.slow
def test_cli_answers_piped_input_and_exits_cleanly(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", synthetic_conversations(40))
    run_job(compose_cfg(["experiment=student", "data=jsonl", f"data.path={data}", *TINY], tmp_path))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    cmd = [sys.executable, "-m", "distillab.chat.app", f"ckpt={ckpt}", "decoding=sample",
           "decoding.top_p=0.9", "decoding.seed=0"]  # fmt: skip
    proc = subprocess.run(cmd, input="hello\nhow are \x1b you\n", capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2 and "Traceback" not in proc.stderr
    bad = subprocess.run([*cmd[:3], "ckpt=/no/such.ckpt"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "ckpt=" in bad.stderr

    # the same model exported (ONNX, onnxruntime): a directory chats too, greedy or beam,
    # and gives the checkpoint's greedy replies

    from distillab.checkpoint import load_model
    from distillab.compose import compose
    from distillab.export.onnx import data_export_settings, export_model

    cfg = compose_cfg(["experiment=student", "data=jsonl", f"data.path={data}", *TINY], tmp_path)
    cfg.paths.output_dir = str(tmp_path / "unused")
    dm = compose(cfg).data
    export = export_model(load_model(str(ckpt)), tmp_path / "export", dm.tokenizer,
                          data_export_settings(dm, cfg.data.max_target_len))  # fmt: skip
    talk = "hello\nhow are you\n"
    runs = {}
    for name, target in (("ckpt", ckpt), ("export", export)):
        p = subprocess.run([*cmd[:3], f"ckpt={target}", "decoding=greedy"], input=talk,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert p.returncode == 0, p.stderr
        runs[name] = p.stdout.splitlines()
    assert len(runs["export"]) == 2 and runs["export"] == runs["ckpt"]
    beam = subprocess.run([*cmd[:3], f"ckpt={export}", "decoding=beam"], input=talk,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert beam.returncode == 0 and len(beam.stdout.splitlines()) == 2, beam.stderr
    # sampling on an export: a nucleus of one token is greedy; a seed repeats its reply
    sampled = {}
    for top_p in ("1e-9", "0.9", "0.9"):
        p = subprocess.run([*cmd[:3], f"ckpt={export}", "decoding=sample",
                            f"decoding.top_p={top_p}", "decoding.seed=3"], input=talk,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
        assert p.returncode == 0 and len(p.stdout.splitlines()) == 2, p.stderr
        assert sampled.setdefault(top_p, p.stdout) == p.stdout
    assert sampled["1e-9"].splitlines() == runs["export"]


@pytest.mark.slow
def test_a_truncated_checkpoint_is_one_line_and_chats_once_it_is_whole(tmp_path):
    run_job(compose_cfg(TINY, tmp_path))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])
    cmd = [sys.executable, "-m", "distillab.chat.app", f"ckpt={ckpt}", "decoding=greedy"]
    bad = subprocess.run(cmd, input="hello\n", capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stdout == "", bad.stderr[-3000:]
    (line,) = [x for x in bad.stderr.splitlines() if x.strip()]
    assert line.startswith(f"distillab-chat: error: checkpoint {ckpt}: truncated"), line
    ckpt.write_bytes(good)
    ok = subprocess.run(cmd, input="hello\n", capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and len(ok.stdout.splitlines()) == 1, ok.stderr[-3000:]
