"""OpenDIP: region-wide point-value budgeting and payment by disease group (DIP)."""

__version__ = "0.1.0"
