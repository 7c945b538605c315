"""Executes ResourceGraphs: apply in dependency order, readiness, inventory, pruning, deletion.

One module per job: ``apply`` (the pass, and the apply of one node), ``plan`` (a dry run of
one node), ``confine`` (where an object may go), ``ssa`` (the server-side apply calls and their
conflicts), ``prune`` (prune, ordered deletion, the search for unlisted objects), ``result``
(what a pass found and did), ``live`` (the live-object cache), ``readiness`` and ``compare``."""
