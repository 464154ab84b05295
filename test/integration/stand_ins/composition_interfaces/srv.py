"""``composition_interfaces.srv`` stand-in: names that exist, services that refuse to work."""


class _Unavailable:
    """A service type whose use fails with a clear message."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("composition_interfaces is a test stand-in: composable nodes "
                           "need a ROS 2 install")


class LoadNode:
    """``composition_interfaces/srv/LoadNode``: request and response refuse construction."""

    Request = _Unavailable
    Response = _Unavailable
