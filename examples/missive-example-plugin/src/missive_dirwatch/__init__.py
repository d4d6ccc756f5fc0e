"""A Missive adapter that turns each file dropped in a directory into a message.

No server is needed: a producer writes a file into ``incoming/`` (with
:func:`drop`, or by renaming a finished file there), the adapter hands its
bytes to the processor, and moves it to ``done/`` once acked or to
``failed/``::

    from missive_dirwatch import DirectoryAdapter

    DirectoryAdapter(JSONMessage, processor, "/var/spool/orders").run()
"""

from __future__ import annotations

from missive_dirwatch.adapter import DirectoryAdapter, drop

__all__ = ["DirectoryAdapter", "drop"]
