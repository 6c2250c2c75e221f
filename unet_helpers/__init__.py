"""Helper package for the unet-tutorial notebooks.

Each module has one job: ``config`` picks the size of every run (the profiles) and where data goes,
``versions`` checks the installed libraries against what the series needs, ``errors`` holds the
exception raised for mistakes a user can fix. The notebooks import what two of them (or the command
line) share.
"""

__version__ = "0.1.0"
