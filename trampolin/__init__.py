"""trampolin: the PostgreSQL data layer of the Trampolin web application.

Import the repositories from their modules (``trampolin.auth``,
``trampolin.subscriptions``, ``trampolin.csv_uploads``); this package imports
nothing heavy, so that the CLI starts fast.
"""

__version__ = "0.1.0"
