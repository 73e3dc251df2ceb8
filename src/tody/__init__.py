"""tody: self-hostable real-time analytics APIs that speak Tinybird's API."""

__version__ = "0.1.0"
