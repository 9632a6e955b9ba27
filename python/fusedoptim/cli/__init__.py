"""The ``fusedoptim`` command line, kept apart from the library: ``info``, ``train`` and ``tune`` (:mod:`.demo`,
the training demo) and ``bench`` (:mod:`.bench`, the benchmark harness).

Imports go one way: these modules use the library, and the library (everything in ``fusedoptim`` outside this
package) never imports from here, so ``import fusedoptim`` loads none of it. The entry point is
:func:`fusedoptim.cli.__main__.main` (``fusedoptim ...`` and ``python -m fusedoptim ...``).
"""
