"""One module per ``harmonies`` command (registered in :data:`pyharmonies.cli.COMMANDS`).

A command module imports click and the standard library at module level and
nothing else: numpy, the native extension, librosa or torch are imported
inside the command function, so listing the commands stays cheap. Shared
options and helpers live in :mod:`pyharmonies.commands._common`.
"""
