"""ServiceWorkload, the hardened building block both services are deployed with, and its settings."""
