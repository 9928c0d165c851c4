"""dcops: the provincial data integration center and WAN, as code."""

__version__ = "0.1.0"
