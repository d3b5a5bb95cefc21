"""Device .om files (made by Ascend ATC / GE): read, inspect, decode weights, convert to a Graph.

Layer: om. Nothing here executes anything from a file. See docs/device_om.md.
"""

from openge.om.device.reader import DeviceOm, is_device_om, read_device_om

__all__ = ["DeviceOm", "is_device_om", "read_device_om"]
