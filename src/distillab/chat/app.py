"""`distillab-chat ckpt=PATH`: a terminal chat with a trained model.

Arguments are Hydra overrides of `conf/chat.yaml` (composed with Hydra's compose API: no run
directory, no log files), e.g. `distillab-chat ckpt=runs/x/checkpoints/last.ckpt
decoding=sample decoding.top_p=0.9`. On a terminal it prompts (`you> `) and prefixes replies
(`bot> `); with piped input it writes one reply per input line and nothing else on stdout
(notices go to stderr). An empty line, end of input or Ctrl-C ends it with status 0; a bad
argument exits 2 with one line.
"""

from __future__ import annotations

import sys

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf

from distillab.chat.replier import load_replier
from distillab.chat.session import Session, clean
from distillab.errors import ConfigError, DistillabError


def load_config(overrides: list[str]) -> dict:
    from distillab.train import CONF_DIR

    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose("chat", overrides=overrides)
    except HydraException as e:
        raise ConfigError(str(e).strip().splitlines()[0]) from None
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} is required, e.g. distillab-chat ckpt=PATH")
    return OmegaConf.to_container(cfg, resolve=True)


def chat(session: Session, stdin, stdout, stderr, interactive: bool) -> None:
    while True:
        if interactive:
            stdout.write("you> ")
            stdout.flush()
        line = stdin.readline()
        if not line:  # end of input
            break
        text = clean(line)
        if not text:  # an empty line ends the chat
            break
        reply, notice = session.respond(text)
        if notice:
            stderr.write(notice + "\n")
        stdout.write(("bot> " if interactive else "") + reply + "\n")
        stdout.flush()


def main(argv: list[str]) -> int:
    try:
        cfg = load_config(argv)
        replier = load_replier(cfg["ckpt"], cfg["decoding"], cfg.get("max_len"))
    except DistillabError as e:
        sys.stderr.write(f"distillab-chat: error: {e}\n")
        return 2
    interactive = sys.stdin.isatty()
    if interactive:
        sys.stdout.write("distillab-chat: an empty line or Ctrl-D ends the chat\n")
    try:
        chat(Session(replier), sys.stdin, sys.stdout, sys.stderr, interactive)
    except KeyboardInterrupt:
        pass
    if interactive:
        sys.stdout.write("\n")
    return 0


def cli() -> None:
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    cli()
