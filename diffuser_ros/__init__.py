"""ROS 2 adapters over diffuser_core: nodes, message conversion, bringup.

The generated interfaces (diffuser_ros.msg, diffuser_ros.action) may be installed in another folder
than these sources (the pip set-up builds them into ./install); extend_path joins the two.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
