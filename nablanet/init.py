"""Weight initializers (``nablanet.init``); the same module as ``nablanet.nn.init``."""

from .nn.init import *  # noqa: F403
from .nn.init import INITIALIZERS, get_initializer  # noqa: F401
