"""Peer baselines for ``compare``, each in its own module, loaded only when that baseline is asked for.

The library itself never imports a peer framework: ``nablanet.baselines.pytorch``
imports torch when (and only when) ``compare`` is asked for the PyTorch row.
"""
