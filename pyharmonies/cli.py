"""The ``harmonies`` command line: a click group that only parses.

Each command lives in its own module under :mod:`pyharmonies.commands` and
calls library functions; heavy imports (numpy, librosa, torch, the native
extension) happen inside the command function, so ``harmonies --help`` and
``harmonies <command> --help`` import nothing but click.

Adding a command is one line in :data:`COMMANDS`: its name and where its
click command object lives, as ``"module:attribute"``. The module is imported
only when the command is run, or when ``--help`` lists the commands (so
command modules must stay cheap at import time: click and the standard
library only).
"""

from __future__ import annotations

import importlib

import click

from pyharmonies import __version__

#: Command name -> "module:attribute" of its click command, in display order: the path a new
#: user takes first (data, train, export, classify, listen; pretrain before train, tune, evaluate
#: and compare beside it), then the feature tools.
COMMANDS: dict[str, str] = {
    "dataset": "pyharmonies.commands.dataset:dataset",
    "pretrain": "pyharmonies.commands.pretrain:pretrain",
    "train": "pyharmonies.commands.train:train",
    "tune": "pyharmonies.commands.tune:tune",
    "evaluate": "pyharmonies.commands.evaluate:evaluate",
    "compare": "pyharmonies.commands.compare:compare",
    "ensemble": "pyharmonies.commands.ensemble:ensemble",
    "export": "pyharmonies.commands.export:export",
    "classify": "pyharmonies.commands.classify:classify",
    "listen": "pyharmonies.commands.listen:listen",
    "devices": "pyharmonies.commands.listen:devices",
    "embed": "pyharmonies.commands.embed:embed",
    "map": "pyharmonies.commands.music_map:map_command",
    "similar": "pyharmonies.commands.similar:similar",
    "features": "pyharmonies.commands.features:features",
    "parity": "pyharmonies.commands.parity:parity",
    "bench": "pyharmonies.commands.bench:bench",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def __init__(self, *args, lazy_commands: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        eager = [name for name in super().list_commands(ctx) if name not in self.lazy_commands]
        return list(self.lazy_commands) + sorted(eager)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "-V", "--version", prog_name="harmonies")
def cli() -> None:
    """harmonies: a music classifier for small devices, its features from one C99
    core verified against librosa.

    \b
    From data to a live microphone:
      harmonies dataset synth data/synth            a small labelled corpus (or data/<label>/*.wav)
      harmonies train data/synth --out runs/cnn     train a CNN (--model lstm|transformer|svm); report.md
      harmonies export runs/cnn --int8              a verified int8 bundle in export/cnn
      harmonies classify export/cnn song.wav        classify files on the device runtime
      harmonies listen --model export/cnn           classify the microphone live

    \b
    Embeddings (a CNN run, a backbone or a bundle):
      harmonies embed runs/cnn data/ --out e.npz    a vector per clip and per window
      harmonies map e.npz --out map.png             t-SNE of the clips, coloured by label
      harmonies similar e.npz song.wav --k 5        the nearest clips by cosine

    \b
    The features alone:
      harmonies features song.wav                   per-file summary (--out feats.npz writes them)
      harmonies parity song.wav                     compare with librosa
      harmonies bench                               time against librosa

    Every command explains itself: harmonies COMMAND --help.
    """


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``harmonies = pyharmonies.cli:main``)."""
    cli.main(args=argv, prog_name="harmonies")


if __name__ == "__main__":
    main()
